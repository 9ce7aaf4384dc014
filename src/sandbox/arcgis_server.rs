//! Local simulator of an ArcGIS Server site (`{server}` = `http://host:port/arcgis`): `rest/info`, standalone
//! `tokens/generateToken`, and a secured map service, standalone or federated with a `PortalSim` (protocols.md §2).

use super::arcgis::{
    arcgis_json, html_directory, invalid_token, json_format, random_token, resolve_minutes, token_binding,
    token_required, unable_to_generate,
};
use super::http::{html_page, Incoming, Listener, Reply};
use super::portal::{FederationLink, SimUser};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Short-lived token validity advertised in `rest/info` and used when `expiration` is absent.
const SHORT_LIVED_MINUTES: u64 = 60;
/// Long-lived tokens are capped at one day, like a default site's token settings.
const MAX_TOKEN_MINUTES: u64 = 1_440;

/// How the site is secured.
#[derive(Clone)]
pub enum ServerSecurity {
    /// No token security: `isTokenBasedSecurity: false`, services open to all.
    Open,
    /// The site's own users and `tokens/generateToken`.
    Standalone,
    /// Federated with a portal: `owningSystemUrl` names it, only its server tokens open services.
    Federated(FederationLink),
}

/// What a `ServerSim` serves: its security model and, when standalone, its users.
#[derive(Clone)]
pub struct ServerConfig {
    /// Open, standalone (own users and generateToken) or federated with a portal.
    pub security: ServerSecurity,
    /// Built-in users of a standalone site.
    pub users: Vec<SimUser>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let user = |name: &str| SimUser {
            username: name.to_string(),
            password: format!("{name}-password"),
            full_name: name.to_string(),
            email: format!("{name}@example.test"),
        };
        ServerConfig { security: ServerSecurity::Standalone, users: vec![user("siteadmin"), user("alice")] }
    }
}

#[derive(Clone)]
struct ServerGrant {
    expires_at: u64,
    referer: Option<String>,
    ip: Option<String>,
}

struct ServerState {
    config: ServerConfig,
    clock_offset_secs: i64,
    counts: BTreeMap<String, u64>,
    tokens: HashMap<String, ServerGrant>,
}

impl ServerState {
    fn now(&self) -> u64 {
        if let ServerSecurity::Federated(link) = &self.config.security {
            return link.now();
        }
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        wall.saturating_add_signed(self.clock_offset_secs)
    }

    fn bump(&mut self, key: &str) {
        *self.counts.entry(key.to_string()).or_insert(0) += 1;
    }
}

fn lock(state: &Mutex<ServerState>) -> MutexGuard<'_, ServerState> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running ArcGIS Server simulator; dropping it stops it and frees the port.
pub struct ServerSim {
    listener: Listener,
    state: Arc<Mutex<ServerState>>,
}

impl ServerSim {
    /// Binds (e.g. `"127.0.0.1:0"`) and serves. A federated site registers itself with its portal.
    pub fn start(bind: &str, config: ServerConfig) -> std::io::Result<ServerSim> {
        let link = match &config.security {
            ServerSecurity::Federated(link) => Some(link.clone()),
            _ => None,
        };
        let state = Arc::new(Mutex::new(ServerState {
            config,
            clock_offset_secs: 0,
            counts: BTreeMap::new(),
            tokens: HashMap::new(),
        }));
        let shared = state.clone();
        let listener = Listener::start(bind, "server-sim", move |reach| {
            let root = format!("http://{reach}/arcgis");
            if let Some(link) = &link {
                link.federate(&root);
            }
            Arc::new(move |req: &Incoming| route(&shared, req, &root))
        })?;
        Ok(ServerSim { listener, state })
    }

    /// The `{server}` root, e.g. `http://127.0.0.1:PORT/arcgis`.
    pub fn base_url(&self) -> String {
        format!("http://{}/arcgis", self.listener.reach)
    }

    /// The secured service's URL (answers JSON with `f=json`).
    pub fn secure_service_url(&self) -> String {
        format!("{}/rest/services/Secure/MapServer?f=json", self.base_url())
    }

    /// Requests seen per endpoint key (`info`, `generateToken`, `service`, `service:498`, ...).
    pub fn count(&self, key: &str) -> u64 {
        lock(&self.state).counts.get(key).copied().unwrap_or(0)
    }

    /// Moves a standalone site's clock forward (a federated site follows its portal's clock).
    pub fn advance_clock(&self, seconds: u64) {
        let mut st = lock(&self.state);
        st.clock_offset_secs = st.clock_offset_secs.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX));
    }

    /// The site's clock in Unix seconds (wall clock plus `advance_clock`, or the portal's when federated).
    pub fn now(&self) -> u64 {
        lock(&self.state).now()
    }

    /// Sends every later answer with a `Date` header `seconds` off (negative: behind).
    pub fn skew_date_header(&self, seconds: i64) {
        self.listener.skew_date_header(seconds);
    }

    /// Blocks the calling thread while the simulator serves.
    pub fn serve_forever(mut self) {
        self.listener.join();
    }
}

fn route(state: &Mutex<ServerState>, req: &Incoming, root: &str) -> Reply {
    let mut st = lock(state);
    let st = &mut *st;
    match req.path.trim_end_matches('/') {
        "/arcgis/rest/info" => info(st, req, root),
        "/arcgis/tokens/generateToken" | "/arcgis/tokens" => generate_token(st, req),
        "/arcgis/rest/services/Secure/MapServer" => secure_service(st, req, root),
        "/arcgis/rest/services" => services_directory(st, req, root),
        _ => {
            st.bump("not_found");
            html_page(404, "404 Not Found", "<h1>Not Found</h1>\n<p>The requested resource does not exist.</p>")
        }
    }
}

/// The services directory: open to all, but a token that comes with the request must be
/// valid (498 otherwise), as a real site answers.
fn services_directory(st: &mut ServerState, req: &Incoming, root: &str) -> Reply {
    st.bump("services");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    if let Some(token) = req.bearer.as_deref().or_else(|| req.param("token")) {
        let valid = match &st.config.security {
            ServerSecurity::Open => true,
            ServerSecurity::Standalone => st.tokens.get(token).is_some_and(|g| g.expires_at > st.now()),
            ServerSecurity::Federated(link) => link.check(token, root, req),
        };
        if !valid {
            st.bump("services:498");
            return invalid_token(pretty);
        }
    }
    arcgis_json(
        json!({"currentVersion": 11.3, "folders": [], "services": [{"name": "Secure", "type": "MapServer"}]}),
        pretty,
    )
}

fn info(st: &mut ServerState, req: &Incoming, root: &str) -> Reply {
    st.bump("info");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    let mut body = json!({
        "currentVersion": 11.3,
        "fullVersion": "11.3.0",
        "soapUrl": format!("{root}/services"),
        "secureSoapUrl": null,
    });
    body["authInfo"] = match &st.config.security {
        ServerSecurity::Open => json!({"isTokenBasedSecurity": false}),
        ServerSecurity::Standalone => json!({
            "isTokenBasedSecurity": true,
            "tokenServicesUrl": format!("{root}/tokens/generateToken"),
            "shortLivedTokenValidity": SHORT_LIVED_MINUTES,
        }),
        ServerSecurity::Federated(link) => {
            body["owningSystemUrl"] = json!(link.portal_url());
            json!({
                "isTokenBasedSecurity": true,
                "tokenServicesUrl": format!("{}/sharing/rest/generateToken", link.portal_url()),
                "shortLivedTokenValidity": SHORT_LIVED_MINUTES,
            })
        }
    };
    arcgis_json(body, pretty)
}

fn generate_token(st: &mut ServerState, req: &Incoming) -> Reply {
    st.bump("generateToken");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    if !matches!(st.config.security, ServerSecurity::Standalone) {
        return unable_to_generate("Token-based security is not enabled on this site.", pretty);
    }
    if !req.is_post {
        return unable_to_generate("Token generation requires a POST request.", pretty);
    }
    let (username, password) = (req.param("username").unwrap_or(""), req.param("password").unwrap_or(""));
    if !st.config.users.iter().any(|u| u.username == username && u.password == password) {
        st.bump("generateToken:refused");
        return unable_to_generate("Invalid username or password.", pretty);
    }
    let (referer, ip) = match token_binding(req) {
        Ok(binding) => binding,
        Err(detail) => return unable_to_generate(detail, pretty),
    };
    let expiration = req.param("expiration").and_then(|e| e.trim().parse().ok());
    let lifetime = resolve_minutes(expiration, MAX_TOKEN_MINUTES).unwrap_or(SHORT_LIVED_MINUTES) * 60;
    let expires_at = st.now() + lifetime;
    let token = random_token("sv_");
    st.tokens.insert(token.clone(), ServerGrant { expires_at, referer, ip });
    // `expires` is epoch milliseconds.
    arcgis_json(json!({"token": token, "expires": expires_at * 1000, "ssl": false}), pretty)
}

fn secure_service(st: &mut ServerState, req: &Incoming, root: &str) -> Reply {
    st.bump("service");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    let service = json!({
        "mapName": "Secure",
        "serviceDescription": "A secured map service of the age-oauth server simulator",
        "currentVersion": 11.3,
        "capabilities": "Map,Query,Data",
    });
    let token = req.bearer.as_deref().or_else(|| req.param("token"));
    let valid = match (&st.config.security, token) {
        (ServerSecurity::Open, _) => true,
        (_, None) => {
            st.bump("service:499");
            return token_required(pretty);
        }
        (ServerSecurity::Standalone, Some(t)) => {
            let now = st.now();
            st.tokens.get(t).is_some_and(|g| {
                g.expires_at > now
                    && g.referer.as_deref().is_none_or(|r| req.referer.as_deref() == Some(r))
                    && g.ip.as_deref().is_none_or(|ip| req.remote_ip.as_deref() == Some(ip))
            })
        }
        (ServerSecurity::Federated(link), Some(t)) => link.check(t, root, req),
    };
    if valid {
        arcgis_json(service, pretty)
    } else {
        st.bump("service:498");
        invalid_token(pretty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{PortalConfig, PortalSim};
    use serde_json::Value;

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    fn post(url: &str, form: &[(&str, &str)], referer: Option<&str>) -> Value {
        let mut req = agent().post(url);
        if let Some(r) = referer {
            req = req.header("Referer", r);
        }
        serde_json::from_str(&req.send_form(form.iter().copied()).unwrap().body_mut().read_to_string().unwrap())
            .unwrap()
    }

    fn get(url: &str, headers: &[(&str, &str)]) -> Value {
        let mut req = agent().get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        serde_json::from_str(&req.call().unwrap().body_mut().read_to_string().unwrap()).unwrap()
    }

    fn code(v: &Value) -> i64 {
        v["error"]["code"].as_i64().unwrap_or(0)
    }

    #[test]
    fn standalone_tokens_bind_to_referer_or_ip_and_expire() {
        let sim = ServerSim::start("127.0.0.1:0", ServerConfig::default()).unwrap();
        let info = get(&format!("{}/rest/info?f=json", sim.base_url()), &[]);
        assert_eq!(info["authInfo"]["tokenServicesUrl"], format!("{}/tokens/generateToken", sim.base_url()));
        assert!(info.get("owningSystemUrl").is_none(), "a standalone site names no portal");
        let gt = format!("{}/tokens/generateToken", sim.base_url());

        let bad =
            post(&gt, &[("username", "alice"), ("password", "nope"), ("client", "requestip"), ("f", "json")], None);
        assert_eq!(code(&bad), 400);
        assert_eq!(bad["error"]["details"][0], "Invalid username or password.");
        let get_refused = get(&format!("{gt}?username=alice&password=alice-password&f=json"), &[]);
        assert_eq!(code(&get_refused), 400, "GET is refused");

        let form = [("username", "alice"), ("password", "alice-password"), ("f", "json"), ("expiration", "5")];
        let by_ip = post(&gt, &[&form[..], &[("client", "requestip")]].concat(), None);
        let token = by_ip["token"].as_str().unwrap().to_string();
        let expires_ms = by_ip["expires"].as_u64().unwrap();
        assert!(expires_ms / 1000 >= sim.now() + 299 && expires_ms / 1000 <= sim.now() + 300, "epoch ms");
        let service = sim.secure_service_url();
        assert_eq!(code(&get(&service, &[])), 499);
        assert_eq!(get(&service, &[("X-Esri-Authorization", &format!("Bearer {token}"))])["mapName"], "Secure");
        assert_eq!(get(&service, &[("Authorization", &format!("Bearer {token}"))])["mapName"], "Secure");
        assert_eq!(get(&format!("{service}&token={token}"), &[])["mapName"], "Secure");
        assert_eq!(code(&get(&service, &[("X-Esri-Authorization", "Bearer forged")])), 498);

        let by_referer =
            post(&gt, &[&form[..], &[("client", "referer"), ("referer", "https://app.example")]].concat(), None);
        let bound = format!("Bearer {}", by_referer["token"].as_str().unwrap());
        assert_eq!(code(&get(&service, &[("X-Esri-Authorization", &bound)])), 498, "no Referer");
        let ok = get(&service, &[("X-Esri-Authorization", &bound), ("Referer", "https://app.example")]);
        assert_eq!(ok["mapName"], "Secure");

        sim.advance_clock(301);
        assert_eq!(code(&get(&format!("{service}&token={token}"), &[])), 498, "expired");
    }

    #[test]
    fn federated_site_takes_only_tokens_minted_for_it() {
        let portal = PortalSim::start("127.0.0.1:0", PortalConfig::default()).unwrap();
        let fed = ServerConfig { security: ServerSecurity::Federated(portal.federation()), ..Default::default() };
        let server = ServerSim::start("127.0.0.1:0", fed.clone()).unwrap();
        let other = ServerSim::start("127.0.0.1:0", fed).unwrap();
        let info = get(&format!("{}/rest/info?f=json", server.base_url()), &[]);
        assert_eq!(info["owningSystemUrl"], portal.base_url());
        let portal_gt = format!("{}/sharing/rest/generateToken", portal.base_url());
        assert_eq!(info["authInfo"]["tokenServicesUrl"], portal_gt);

        let login = [
            ("username", "alice"),
            ("password", "alice-password"),
            ("client", "referer"),
            ("referer", "https://r"),
            ("f", "json"),
        ];
        let portal_token = post(&portal_gt, &login, None)["token"].as_str().unwrap().to_string();
        let exchange = [("token", portal_token.as_str()), ("serverUrl", &server.base_url()), ("f", "json")];
        assert_eq!(code(&post(&portal_gt, &exchange, None)), 498, "the portal token is bound to its referer");
        let minted = post(&portal_gt, &exchange, Some("https://r"));
        let server_token = format!("Bearer {}", minted["token"].as_str().unwrap());
        assert!(minted["expires"].as_u64().unwrap() > 1_000_000_000_000, "epoch ms");

        let headers = [("X-Esri-Authorization", server_token.as_str()), ("Referer", "https://r")];
        assert_eq!(get(&server.secure_service_url(), &headers)["mapName"], "Secure");
        assert_eq!(code(&get(&other.secure_service_url(), &headers)), 498, "valid only at its own server");
        let portal_token_there = format!("Bearer {portal_token}");
        let headers = [("X-Esri-Authorization", portal_token_there.as_str()), ("Referer", "https://r")];
        assert_eq!(code(&get(&server.secure_service_url(), &headers)), 498, "a portal token is not a server token");
        let community = format!("{}/sharing/rest/community/self?f=json", portal.base_url());
        assert_eq!(code(&get(&community, &[("X-Esri-Authorization", &server_token), ("Referer", "https://r")])), 498);

        let foreign = [("token", portal_token.as_str()), ("serverUrl", "http://127.0.0.1:9/arcgis"), ("f", "json")];
        assert_eq!(code(&post(&portal_gt, &foreign, Some("https://r"))), 400, "not federated");
    }
}
