//! The BOSH release in `deploy/bosh/`: its job templates rendered without a Director by the ERB
//! harness `deploy/bosh/test/render.rb` (Debian's ruby; `scripts/prereqs` installs it) with the
//! job specs' defaults, the example manifest and its ops files; then the release's structure, the
//! rendered bpm files and secrets checked, and each rendered config loaded by its service's own
//! settings loader and served with the rendered certificates.

mod configs;
mod errands;
mod harness;
mod instance_jobs;
mod instance_servers;
mod structure;
