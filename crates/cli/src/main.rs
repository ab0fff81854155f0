//! `tally`: one binary for the API, the workers and the operator's commands.
//!
//! Configuration comes from flags or the environment (`DATABASE_URL`, `TALLY_ADMIN_TOKEN`, ...);
//! without `DATABASE_URL` every command uses the PostgreSQL that Tally manages under
//! `./tally-data/` (see [`database`]).

mod bench_cpu;
mod bench_ingest;
mod bench_read;
mod commands;
mod database;
mod demo;
mod work;

use clap::Parser;

/// mimalloc instead of glibc's malloc: request handling allocates many small short-lived
/// buffers on two worker threads, and glibc's arena bookkeeping (`malloc_consolidate`,
/// `unlink_chunk`) showed up as a few percent of the ingestion profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tally: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
