//! The `harness` command line.

fn main() {
    println!("harness: under construction");
}
