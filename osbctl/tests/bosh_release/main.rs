//! The BOSH release in `deploy/bosh/`: its job templates rendered without a Director by the ERB
//! harness `deploy/bosh/test/render.rb` (Debian's ruby; `scripts/prereqs` installs it) with the
//! job specs' defaults, the example manifest and its ops files; then the release's structure, the
//! rendered bpm files and secrets checked, and each rendered config loaded by its service's own
//! settings loader and served with the rendered certificates. The service-instance jobs
//! (`postgres`, `redis`) are rendered from the deployer's own bosh manifest and their servers
//! run for real from what they rendered.

mod configs;
mod errands;
mod harness;
mod instance_jobs;
mod instance_servers;
mod structure;
