//! Property tests over arbitrary input (the stable-toolchain stand-in for fuzzing, run by CI):
//! config parsing, server-answer and token parsing, and cache decoding never panic, and
//! whatever they reject is reported as a typed error.

use age_oauth::providers::arcgis::extract_code;
use age_oauth::providers::arcgis::{read_answer, token_set, Answer};
use age_oauth::CacheStore;
use age_oauth::HttpResponse;
use age_oauth::Paths;
use age_oauth::{loose_value, Config};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Text that looks like a profile file often enough to get past the TOML parser.
fn tomlish() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "provider",
        "portal",
        "client_id",
        "client_secret",
        "expiration",
        "verify_ssl",
        "refresh_margin",
        "referer",
        "x",
    ]);
    let value = prop::sample::select(vec![
        "\"esri-oob\"",
        "\"esri-app\"",
        "\"https://p.example/portal\"",
        "\"http://10.0.0.1\"",
        "60",
        "-1",
        "true",
        "\"/ca.pem\"",
        "[1, 2]",
        "{ a = 1 }",
        "\"\"",
        "1979-05-27",
        "3.5",
    ]);
    let line = (key, value).prop_map(|(k, v)| format!("{k} = {v}"));
    let header = prop::sample::select(vec![
        "[profiles.p]",
        "[profiles.\"q r\"]",
        "[profiles]",
        "[x]",
        "default_profile = \"p\"",
    ]);
    prop::collection::vec(prop_oneof![header.prop_map(String::from), line, ".{0,20}"], 0..12).prop_map(|l| l.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn config_parsing_never_panics(text in prop_oneof![tomlish(), ".{0,300}"], env_portal in ".{0,40}") {
        let env: BTreeMap<String, String> = [("AGE_OAUTH_PORTAL".to_string(), env_portal)].into();
        if let Ok(config) = Config::from_parts(vec![("config.toml".into(), text)], BTreeMap::new(), env) {
            for name in config.profile_names() {
                if let Ok(resolved) = config.resolve(&name, &[]) {
                    let settings = age_oauth::providers::ProfileSettings { profile: name.clone(), values: resolved.provider_values };
                    let _ = (resolved.provider.build)(&settings);
                }
            }
            let _ = config.select(None);
        }
    }

    #[test]
    fn loose_values_never_panic(raw in ".{0,64}") {
        let _ = loose_value(&raw);
    }

    #[test]
    fn server_answers_never_panic(
        status in prop::sample::select(vec![200u16, 201, 302, 400, 401, 403, 404, 498, 500, 502]),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            ".{0,200}".prop_map(String::into_bytes),
            (any::<i64>(), ".{0,20}", any::<bool>()).prop_map(|(n, s, b)| serde_json::json!({
                "access_token": s, "expires_in": n, "refresh_token": if b { serde_json::json!(s) } else { serde_json::json!(n) },
                "refresh_token_expires_in": n, "username": b, "error": if b { serde_json::Value::Null } else { serde_json::json!({"code": n}) }
            }).to_string().into_bytes()),
        ],
        html in any::<bool>(),
    ) {
        let ct = if html { "text/html" } else { "application/json" };
        let response = HttpResponse { status, headers: vec![("Content-Type".into(), ct.into())], body };
        if let Ok(Answer::Ok(object)) = read_answer(&response, "fuzz") {
            let _ = token_set(&object, 1_700_000_000, None, "fuzz");
        }
        let _ = age_oauth::providers::arcgis::judge(&response);
    }

    #[test]
    fn pasted_codes_never_panic(pasted in ".{0,200}") {
        if let Some(code) = extract_code(&pasted) {
            prop_assert!(!code.is_empty() && !code.contains(char::is_whitespace));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn cache_decoding_never_panics(
        prefix in prop::sample::select(vec![&b""[..], &b"age-encryption.org/v1\n"[..], &b"age-encryption.org/v1\n-> X25519 "[..]]),
        bytes in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = CacheStore::with_own_identity(Paths::under(dir.path().to_path_buf()));
        store.public_key(true).unwrap();
        std::fs::create_dir_all(dir.path().join("cache")).unwrap();
        let mut file = prefix.to_vec();
        file.extend(bytes);
        std::fs::write(dir.path().join("cache").join("p.age"), &file).unwrap();
        prop_assert!(store.load("p").is_err(), "random bytes never decode to a cache");
    }
}
