//! Fuzz target: a server's answer (status from the first byte, body from the rest) through
//! ArcGIS answer reading, token-response parsing and the credential verdict.
#![no_main]
use age_oauth::HttpResponse;
use age_oauth::providers::arcgis::{judge, read_answer, token_set, Answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else { return };
    let status = [200u16, 400, 401, 403, 404, 498, 500][(*first as usize) % 7];
    let ct = if first & 0x80 != 0 { "text/html" } else { "application/json" };
    let response = HttpResponse { status, headers: vec![("Content-Type".into(), ct.into())], body: body.to_vec() };
    if let Ok(Answer::Ok(object)) = read_answer(&response, "fuzz") {
        let _ = token_set(&object, 1_700_000_000, None, "fuzz");
    }
    let _ = judge(&response);
});
