//! Clip benchmark (issue 5): work in progress.

fn main() {
    println!("clipping benchmark: not yet implemented");
}
