fn main() -> std::process::ExitCode {
    tenant_plane::cli::main()
}
