//! Digest authentication through the public API: RFC 7616 vectors, a full challenge/response
//! exchange, replay, stale nonces and forged nonces.
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use holdfast_sip::auth::{
    ha1, Algorithm, AuthError, Challenge, Credentials, DigestClient, DigestConfig, DigestServer,
};

// RFC 7616 §3.9.1.
const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn rfc_challenge(algorithm: &str) -> String {
    format!(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    )
}

fn rfc_response(algorithm: &str) -> Credentials {
    let value = DigestClient::authorize(
        &rfc_challenge(algorithm),
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle of Life",
        RFC_CNONCE,
        1,
    )
    .unwrap();
    Credentials::parse(&value).unwrap()
}

#[test]
fn rfc7616_sha256_example() {
    let c = rfc_response("SHA-256");
    assert_eq!(
        c.response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(c.nc, Some(1));
    assert_eq!(c.cnonce.as_deref(), Some(RFC_CNONCE));
    assert_eq!(
        c.opaque.as_deref(),
        Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    );
}

#[test]
fn rfc7616_md5_example() {
    assert_eq!(
        rfc_response("MD5").response,
        "8ca523f5e9506fed4657c9700eebdbec"
    );
}

#[test]
fn client_answers_rfc2069_challenge_without_qop() {
    let value = DigestClient::authorize(
        "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"",
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle Of Life",
        "unused",
        1,
    )
    .unwrap();
    let c = Credentials::parse(&value).unwrap();
    // RFC 2069 §2.4 (with RFC 2617's password spelling the response is this one).
    assert_eq!(c.response, "670fd8c2df070c60b045671b8b24ff02");
    assert_eq!((c.nc, c.cnonce, c.qop), (None, None, None));
}

#[test]
fn client_prefers_sha256() {
    let md5 = "Digest realm=\"r\", nonce=\"n\", algorithm=MD5, qop=\"auth\"";
    let sha = "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256, qop=\"auth\"";
    assert_eq!(DigestClient::preferred_challenge(&[md5, sha]), Some(sha));
    assert_eq!(
        DigestClient::preferred_challenge(&[md5, "Basic realm=x"]),
        Some(md5)
    );
    assert_eq!(DigestClient::preferred_challenge(&["Basic realm=x"]), None);
}

const REALM: &str = "branch.example.org";
/// Keys the nonces (a service draws its own at each start).
const SECRET: [u8; 32] = [7; 32];

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn server() -> DigestServer {
    DigestServer::new(DigestConfig::new(REALM, SECRET))
}

fn users() -> HashMap<(String, Algorithm), String> {
    let mut m = HashMap::new();
    for (user, pw) in [("alice", "wonderland"), ("bob", "builder")] {
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            m.insert((user.to_owned(), alg), ha1(alg, user, REALM, pw));
        }
    }
    m
}

fn lookup<'u>(
    users: &'u HashMap<(String, Algorithm), String>,
) -> impl FnOnce(&str, &str, Algorithm) -> Option<&'u str> {
    move |user: &str, realm: &str, alg| {
        assert_eq!(realm, REALM);
        users.get(&(user.to_owned(), alg)).map(String::as_str)
    }
}

fn answer(challenge: &str, user: &str, password: &str, nc: u32) -> String {
    DigestClient::authorize(
        challenge,
        "REGISTER",
        "sip:branch.example.org",
        user,
        password,
        "c0ffee",
        nc,
    )
    .unwrap()
}

#[test]
fn challenge_offers_sha256_then_md5_with_one_nonce() {
    let s = server();
    let values = s.challenge(at(1000), false);
    assert_eq!(values.len(), 2);
    let sha = Challenge::parse(&values[0]).unwrap();
    let md5 = Challenge::parse(&values[1]).unwrap();
    assert_eq!(
        (sha.algorithm, md5.algorithm),
        (Algorithm::Sha256, Algorithm::Md5)
    );
    assert_eq!(sha.nonce, md5.nonce);
    assert_eq!(sha.realm, REALM);
    assert!(sha.opaque.is_some() && sha.qop.is_some() && !sha.stale);
    assert!(values[0].contains("qop=\"auth\""), "{}", values[0]);
    assert!(
        Challenge::parse(&s.challenge(at(1000), true)[0])
            .unwrap()
            .stale
    );
    // Every challenge carries its own nonce, even within one second.
    assert_ne!(
        Challenge::parse(&s.challenge(at(1000), false)[0])
            .unwrap()
            .nonce,
        sha.nonce
    );
}

#[test]
fn offered_algorithms_are_configurable_and_others_refused() {
    let mut config = DigestConfig::new(REALM, SECRET);
    config.algorithms = vec![Algorithm::Md5];
    let s = DigestServer::new(config);
    let users = users();
    let values = s.challenge(at(1000), false);
    assert_eq!(values.len(), 1);
    let md5 = Challenge::parse(&values[0]).unwrap();
    assert_eq!(md5.algorithm, Algorithm::Md5);
    assert!(s
        .verify(
            "REGISTER",
            &answer(&values[0], "alice", "wonderland", 1),
            lookup(&users),
            at(1000)
        )
        .is_ok());
    // A client may not pick a stronger or weaker algorithm than offered.
    let mut sha = md5;
    sha.algorithm = Algorithm::Sha256;
    let sha = answer(&sha.to_header_value(), "alice", "wonderland", 2);
    assert!(matches!(
        s.verify("REGISTER", &sha, lookup(&users), at(1000)),
        Err(AuthError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn both_algorithms_authenticate() {
    let s = server();
    let users = users();
    let challenges = s.challenge(at(1000), false);
    // Both values share the nonce, so the second answer must count on from the first.
    for (nc, (challenge, alg)) in
        (1..).zip(challenges.iter().zip([Algorithm::Sha256, Algorithm::Md5]))
    {
        let auth = answer(challenge, "alice", "wonderland", nc);
        let ok = s
            .verify("REGISTER", &auth, lookup(&users), at(1001))
            .unwrap();
        assert_eq!(ok.username, "alice");
        assert_eq!(ok.realm, REALM);
        assert_eq!(ok.algorithm, alg);
        assert_eq!(ok.uri, "sip:branch.example.org");
    }
}

#[test]
fn wrong_password_unknown_user_and_wrong_method_are_refused() {
    let s = server();
    let users = users();
    let c = &s.challenge(at(1000), false)[0];
    let wrong = answer(c, "alice", "looking-glass", 1);
    assert_eq!(
        s.verify("REGISTER", &wrong, lookup(&users), at(1000)),
        Err(AuthError::BadCredentials)
    );
    let nobody = answer(c, "mallory", "x", 1);
    assert_eq!(
        s.verify("REGISTER", &nobody, lookup(&users), at(1000)),
        Err(AuthError::UnknownUser)
    );
    let good = answer(c, "alice", "wonderland", 1);
    assert_eq!(
        s.verify("INVITE", &good, lookup(&users), at(1000)),
        Err(AuthError::BadCredentials)
    );
    // Claiming to be bob with alice's answer.
    let swapped = good.replace("username=\"alice\"", "username=\"bob\"");
    assert_eq!(
        s.verify("REGISTER", &swapped, lookup(&users), at(1000)),
        Err(AuthError::BadCredentials)
    );
}

#[test]
fn replayed_or_decreasing_nonce_count_is_refused() {
    let s = server();
    let users = users();
    let c = &s.challenge(at(1000), false)[0];
    let first = answer(c, "alice", "wonderland", 1);
    assert!(s
        .verify("REGISTER", &first, lookup(&users), at(1000))
        .is_ok());
    assert_eq!(
        s.verify("REGISTER", &first, lookup(&users), at(1001)),
        Err(AuthError::Replay)
    );
    let third = answer(c, "alice", "wonderland", 3);
    assert!(s
        .verify("REGISTER", &third, lookup(&users), at(1002))
        .is_ok());
    let second = answer(c, "alice", "wonderland", 2);
    assert_eq!(
        s.verify("REGISTER", &second, lookup(&users), at(1003)),
        Err(AuthError::Replay)
    );
    // Another client's nonce from the same second counts on its own.
    let other = &s.challenge(at(1000), false)[0];
    let bob = answer(other, "bob", "builder", 1);
    assert!(s.verify("REGISTER", &bob, lookup(&users), at(1003)).is_ok());
}

#[test]
fn expired_nonce_is_stale_only_for_the_right_password() {
    let mut config = DigestConfig::new(REALM, SECRET);
    config.nonce_lifetime = Duration::from_secs(300);
    let s = DigestServer::new(config);
    let users = users();
    let c = &s.challenge(at(1000), false)[0];
    let good = answer(c, "alice", "wonderland", 1);
    assert_eq!(
        s.verify("REGISTER", &good, lookup(&users), at(1301)),
        Err(AuthError::Stale)
    );
    let wrong = answer(c, "alice", "nope", 1);
    assert_eq!(
        s.verify("REGISTER", &wrong, lookup(&users), at(1301)),
        Err(AuthError::BadCredentials)
    );
    // At the very end of its lifetime the nonce is still good.
    assert!(s
        .verify("REGISTER", &good, lookup(&users), at(1300))
        .is_ok());
}

#[test]
fn foreign_forged_or_malformed_headers_are_refused() {
    let s = server();
    let users = users();
    // Another appliance: its own secret.
    let other = DigestServer::new(DigestConfig::new(REALM, [8; 32]));
    let foreign = answer(
        &other.challenge(at(1000), false)[0],
        "alice",
        "wonderland",
        1,
    );
    assert_eq!(
        s.verify("REGISTER", &foreign, lookup(&users), at(1000)),
        Err(AuthError::BadNonce)
    );

    let c = Challenge::parse(&s.challenge(at(1000), false)[0]).unwrap();
    let mut forged = c.clone();
    forged.nonce = format!("{:016x}{}", 5000u64, &c.nonce[16..]);
    let forged = answer(&forged.to_header_value(), "alice", "wonderland", 1);
    assert_eq!(
        s.verify("REGISTER", &forged, lookup(&users), at(5000)),
        Err(AuthError::BadNonce)
    );

    let mut elsewhere = c.clone();
    elsewhere.realm = "elsewhere.org".into();
    let elsewhere = answer(&elsewhere.to_header_value(), "alice", "wonderland", 1);
    assert!(matches!(
        s.verify("REGISTER", &elsewhere, lookup(&users), at(1000)),
        Err(AuthError::RealmMismatch(_))
    ));

    let mut no_qop = c.clone();
    no_qop.qop = None;
    let no_qop = answer(&no_qop.to_header_value(), "alice", "wonderland", 1);
    assert_eq!(
        s.verify("REGISTER", &no_qop, lookup(&users), at(1000)),
        Err(AuthError::UnsupportedQop)
    );

    for garbage in [
        "",
        "Digest",
        "Basic YWxpY2U6eA==",
        "Digest username=\"alice",
        "Digest \u{0}=\u{0}",
    ] {
        assert!(matches!(
            s.verify("REGISTER", garbage, lookup(&users), at(1000)),
            Err(AuthError::Malformed(_))
        ));
    }
}

#[test]
fn nonce_table_stays_bounded() {
    let mut config = DigestConfig::new(REALM, SECRET);
    config.max_tracked_nonces = 64;
    let s = DigestServer::new(config);
    let users = users();
    let first = s.challenge(at(1000), false)[0].clone();
    let first_answer = answer(&first, "alice", "wonderland", 1);
    assert!(s
        .verify("REGISTER", &first_answer, lookup(&users), at(1000))
        .is_ok());
    for _ in 0..1000 {
        let c = &s.challenge(at(1000), false)[0];
        assert!(s
            .verify(
                "REGISTER",
                &answer(c, "bob", "builder", 1),
                lookup(&users),
                at(1000)
            )
            .is_ok());
    }
    // The first nonce was forgotten to stay within bounds: neither a replay nor a later nc of
    // it passes; the client is told to fetch a new nonce.
    assert_eq!(
        s.verify("REGISTER", &first_answer, lookup(&users), at(1000)),
        Err(AuthError::Stale)
    );
    let later = answer(&first, "alice", "wonderland", 2);
    assert_eq!(
        s.verify("REGISTER", &later, lookup(&users), at(1000)),
        Err(AuthError::Stale)
    );
}

/// `cargo test --release -p holdfast-sip --test auth_digest -- --ignored --nocapture`
#[test]
#[ignore]
fn verify_throughput() {
    let s = server();
    let users = users();
    let challenges: Vec<String> = (0..20_000)
        .map(|_| s.challenge(at(1000), false)[0].clone())
        .collect();
    let answers: Vec<String> = challenges
        .iter()
        .map(|c| answer(c, "alice", "wonderland", 1))
        .collect();
    let started = Instant::now();
    for a in &answers {
        assert!(s.verify("REGISTER", a, lookup(&users), at(1001)).is_ok());
    }
    let elapsed = started.elapsed();
    println!(
        "{} SHA-256 verifies in {elapsed:?}: {:.0}/s, {:.2} µs each",
        answers.len(),
        answers.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / answers.len() as f64
    );
}
