//! B+tree: placeholder until the btree lands.
