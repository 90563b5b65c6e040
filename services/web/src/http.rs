//! The HTTP side: routes, the session check, login and logout with CSRF checks, security
//! headers. Handlers read (`view`) and render (`pages`, `metrics`); they never write.
use crate::auth::{same_token, token, LoginThrottle, Sessions};
use crate::config::Config;
use crate::config_check::{self, Check};
use crate::view::{self, Snapshots};
use crate::{metrics, pages};
use axum::extract::{Form, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use holdfast_store::Store;
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SESSION_COOKIE: &str = "sba_session";
/// The login form's token, echoed by the form (the login itself is CSRF-checked too).
const FORM_COOKIE: &str = "sba_login";
/// Call records on the records page.
const RECENT_CDRS: u32 = 200;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub sessions: Mutex<Sessions>,
    pub throttle: Mutex<LoginThrottle>,
    pub upload: Option<Arc<crate::cdr_upload::Counters>>,
    pub config_check: Mutex<Option<Check>>,
}

/// The client's address, set per connection by `serve`.
#[derive(Clone, Copy)]
pub struct Peer(pub IpAddr);

type Shared = Arc<App>;

pub fn router(app: Shared) -> Router {
    let pages = Router::new()
        .route("/", get(overview))
        .route("/registrations", get(registrations))
        .route("/trunks", get(trunks))
        .route("/span", get(span))
        .route("/calls", get(calls))
        .route("/cdrs", get(cdrs))
        .route("/cdrs.csv", get(cdrs_csv))
        .route("/config", get(config))
        .route("/logout", post(logout))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), require_session));
    Router::new()
        .merge(pages)
        .route("/login", get(login_form).post(login))
        .route("/metrics", get(metrics_text))
        .route("/static/style.css", get(|| async { ([(CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../static/style.css")) }))
        .route("/static/app.js", get(|| async { ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("../static/app.js")) }))
        .layer(axum::middleware::from_fn_with_state(app.clone(), security_headers))
        .with_state(app)
}

/// The logged-in session's CSRF token, for the pages' forms.
#[derive(Clone)]
struct Csrf(String);

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn require_session(State(app): State<Shared>, mut req: Request, next: Next) -> Response {
    let now = Instant::now();
    let csrf = cookie(req.headers(), SESSION_COOKIE)
        .and_then(|t| app.sessions.lock().ok()?.get(t, now).map(|s| s.csrf.clone()));
    match csrf {
        Some(csrf) => {
            req.extensions_mut().insert(Csrf(csrf));
            next.run(req).await
        }
        None if req.headers().contains_key("x-refresh") => StatusCode::UNAUTHORIZED.into_response(),
        None => redirect("/login"),
    }
}

async fn security_headers(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if app.config.web.tls {
        h.insert("strict-transport-security", HeaderValue::from_static("max-age=31536000"));
    }
    res
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

/// A page: the whole document, or only its `<main>` for the refresh script.
fn page(path: &str, headers: &HeaderMap, csrf: &Csrf, main: String) -> Response {
    let body = if headers.contains_key("x-refresh") { main } else { pages::layout(path, &main, &csrf.0) };
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn store_error(e: holdfast_store::StoreError) -> Response {
    log::warn!("reading the store: {e}");
    (StatusCode::SERVICE_UNAVAILABLE, format!("the database cannot be read: {e}")).into_response()
}

async fn overview(State(app): State<Shared>, Extension(csrf): Extension<Csrf>, headers: HeaderMap) -> Response {
    let regs = match view::registrations(&app.store).await {
        Ok(r) => r.len(),
        Err(e) => return store_error(e),
    };
    page("/", &headers, &csrf, pages::overview(&Snapshots::read(&app.config), regs))
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn registrations(State(app): State<Shared>, Extension(csrf): Extension<Csrf>, headers: HeaderMap, Query(s): Query<Search>) -> Response {
    match view::registrations(&app.store).await {
        Ok(b) => page("/registrations", &headers, &csrf, pages::registrations(&b, s.q.get(..200).unwrap_or(&s.q))),
        Err(e) => store_error(e),
    }
}

async fn trunks(State(app): State<Shared>, Extension(csrf): Extension<Csrf>, headers: HeaderMap) -> Response {
    page("/trunks", &headers, &csrf, pages::trunks(&Snapshots::read(&app.config)))
}

async fn span(State(app): State<Shared>, Extension(csrf): Extension<Csrf>, headers: HeaderMap) -> Response {
    page("/span", &headers, &csrf, pages::span(&Snapshots::read(&app.config)))
}

async fn calls(State(app): State<Shared>, Extension(csrf): Extension<Csrf>, headers: HeaderMap) -> Response {
    page("/calls", &headers, &csrf, pages::calls(&Snapshots::read(&app.config)))
}

async fn cdrs(State(app): State<Shared>, Extension(csrf): Extension<Csrf>, headers: HeaderMap) -> Response {
    match app.store.recent_cdrs(RECENT_CDRS).await {
        Ok(r) => page("/cdrs", &headers, &csrf, pages::cdrs(&r)),
        Err(e) => store_error(e),
    }
}

async fn cdrs_csv(State(app): State<Shared>) -> Response {
    match app.store.list_cdrs(0).await {
        Ok(r) => (
            [(CONTENT_TYPE, "text/csv; charset=utf-8"), (CONTENT_DISPOSITION, "attachment; filename=\"call-records.csv\"")],
            pages::cdr_csv(&r),
        )
            .into_response(),
        Err(e) => store_error(e),
    }
}

async fn config(State(app): State<Shared>, Extension(csrf): Extension<Csrf>, headers: HeaderMap) -> Response {
    let check = app.config.file.as_ref().map(|file| {
        let mut last = app.config_check.lock().unwrap_or_else(|e| e.into_inner());
        let c = config_check::check(file, last.take());
        *last = Some(c.clone());
        c
    });
    page("/config", &headers, &csrf, pages::config_page(check.as_ref()))
}

async fn metrics_text(State(app): State<Shared>) -> Response {
    let regs = view::registration_count(&app.store).await.ok();
    let upload = app.upload.as_ref().map(|c| c.snapshot());
    let body = metrics::render(&Snapshots::read(&app.config), regs, upload);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

fn cookie_header(app: &App, name: &str, value: &str, max_age: u64) -> String {
    let secure = if app.config.web.tls { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

async fn login_form(State(app): State<Shared>) -> Response {
    login_page(&app, None, StatusCode::OK).await
}

async fn login_page(app: &App, message: Option<&str>, status: StatusCode) -> Response {
    let form = token();
    let no_password = matches!(app.store.admin_password_hash().await, Ok(None));
    let set = cookie_header(app, FORM_COOKIE, &form, 3600);
    (status, [(SET_COOKIE, set)], ([(CONTENT_TYPE, "text/html; charset=utf-8")], pages::login(&form, message, no_password))).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    form: String,
    #[serde(default)]
    password: String,
}

async fn login(State(app): State<Shared>, Extension(Peer(ip)): Extension<Peer>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    // The form's token must match its cookie: a page elsewhere cannot log the browser in.
    if !cookie(&headers, FORM_COOKIE).is_some_and(|c| same_token(c, &f.form)) {
        return login_page(&app, Some("The form expired; try again."), StatusCode::FORBIDDEN).await;
    }
    let admitted = app.throttle.lock().map_or(Err(Duration::from_secs(1)), |mut t| t.admit(ip, Instant::now()));
    if let Err(wait) = admitted {
        let mut res = login_page(&app, Some(&format!("Too many attempts; wait {} s.", wait.as_secs().max(1))), StatusCode::TOO_MANY_REQUESTS).await;
        res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return res;
    }
    let hash = match app.store.admin_password_hash().await {
        Ok(Some(h)) => h,
        Ok(None) => return login_page(&app, None, StatusCode::FORBIDDEN).await,
        Err(e) => return store_error(e),
    };
    let password = f.password;
    let ok = tokio::task::spawn_blocking(move || holdfast_store::verify_admin_password(&hash, &password)).await.unwrap_or(false);
    if let Ok(mut t) = app.throttle.lock() {
        if ok {
            t.succeeded(ip);
        } else {
            t.failed(ip, Instant::now());
        }
    }
    if !ok {
        log::warn!("web login from {ip} refused: wrong password");
        return login_page(&app, Some("Wrong password."), StatusCode::UNAUTHORIZED).await;
    }
    log::info!("web login from {ip}");
    let (session, _) = match app.sessions.lock() {
        Ok(mut s) => s.create(Instant::now()),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let max_age = app.config.web.session_minutes * 60;
    let mut res = redirect("/");
    for c in [cookie_header(&app, SESSION_COOKIE, &session, max_age), cookie_header(&app, FORM_COOKIE, "", 0)] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    res
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(app): State<Shared>, Extension(csrf): Extension<Csrf>, headers: HeaderMap, Form(f): Form<LogoutForm>) -> Response {
    if !same_token(&csrf.0, &f.csrf) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    if let (Some(t), Ok(mut s)) = (cookie(&headers, SESSION_COOKIE), app.sessions.lock()) {
        s.remove(t);
    }
    let mut res = redirect("/login");
    if let Ok(v) = HeaderValue::from_str(&cookie_header(&app, SESSION_COOKIE, "", 0)) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}
