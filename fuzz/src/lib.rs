//! What the fuzz targets share with the seed generator (`writ-tests`' `fuzz-seeds`, which
//! includes `fixtures.rs` by path so seeds and targets agree on keys, identities and formats).

pub mod fixtures;
