//! `cargo run --release -p tally-attribution --example bench [journeys]`: the same numbers as
//! `tally bench attribution`, without building the CLI.

fn main() {
    let n = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("journey count"))
        .unwrap_or(1_000_000);
    println!(
        "{:<16} {:>10} {:>10} {:>16}",
        "model", "journeys", "seconds", "journeys/s"
    );
    for line in tally_attribution::bench::run(n) {
        println!(
            "{:<16} {:>10} {:>10.4} {:>16.0}",
            line.model, line.journeys, line.seconds, line.journeys_per_sec
        );
    }
}
