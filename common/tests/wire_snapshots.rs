//! JSON snapshots of every wire type: the OSB bodies, the `/spi/v1` and the `/deployer/v1`
//! contracts. Each test builds a value with every field set and compares what serde makes of
//! it with the checked-in file under `tests/snapshots/`, so a silent serde change (a rename, a
//! skipped or defaulted field, an enum spelling) fails here before it reaches another service.
//! `support` says what a snapshot holds and how to re-record one after an intended change.

mod wire_snapshots {
    pub mod deployer;
    pub mod osb;
    pub mod spi;
    pub mod support;
}
