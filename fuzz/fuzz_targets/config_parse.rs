//! Fuzz target: a profile file through parse, profile selection, resolution and provider build.
#![no_main]
use age_oauth::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Ok(config) = Config::from_parts(vec![("config.toml".into(), text)], Default::default(), Default::default()) {
        let _ = config.select(None);
        for name in config.profile_names() {
            if let Ok(resolved) = config.resolve(&name, &[]) {
                let settings = age_oauth::providers::ProfileSettings { profile: name, values: resolved.provider_values };
                let _ = (resolved.provider.build)(&settings);
            }
        }
    }
});
