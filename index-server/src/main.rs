fn main() {
    eprintln!(
        "index-server is not built yet; run `index-generator generate stacks` to build the index of the default registry"
    );
    std::process::exit(2);
}
