// mimalloc: steadier RSS under connection churn than glibc's per-thread
// arenas (a 300 s load run grew glibc's RSS minute over minute), and
// cheaper allocation on the request path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tenant_plane::cli::main()
}
