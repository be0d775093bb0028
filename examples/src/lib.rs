//! Examples for rrssh; run them with `cargo run --example NAME`.
