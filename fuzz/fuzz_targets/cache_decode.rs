//! Fuzz target: arbitrary bytes as a profile's cache file; decoding must fail cleanly.
#![no_main]
use age_oauth::Paths;
use age_oauth::CacheStore;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn store() -> &'static (tempfile::TempDir, CacheStore) {
    static STORE: OnceLock<(tempfile::TempDir, CacheStore)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = CacheStore::with_own_identity(Paths::under(dir.path().to_path_buf()));
        store.public_key(true).unwrap();
        std::fs::create_dir_all(dir.path().join("cache")).unwrap();
        (dir, store)
    })
}

fuzz_target!(|data: &[u8]| {
    let (dir, store) = store();
    std::fs::write(dir.path().join("cache").join("p.age"), data).unwrap();
    assert!(store.load("p").is_err(), "arbitrary bytes never decode to a cache");
});
