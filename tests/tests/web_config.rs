//! sba-web's configuration and span pages on a box whose card is missing (issue 13): sba-registrar
//! and sba-gateway on loopback, the gateway configured for a DAHDI span this machine does not
//! have (no /dev/dahdi), so it waits for it and says so in its status file; headless Chromium
//! sees "waiting for span" on the span page, and a mistake in the registrar's section of the
//! file on the configuration page, by key and line, as sba-registrar's own parser names it, and
//! the page clean again once the mistake is undone. Screenshots: target/test-output/web_config/.
use holdfast_tests::bins::{bin, repo};
use holdfast_tests::netns::KillOnDrop;
use holdfast_tests::ports::free_port;
use holdfast_tests::registrar::Registrar;
use holdfast_tests::scratch::Scratch;
use holdfast_tests::web::{sample, Web, ADMIN_PASSWORD};
use holdfast_tests::webdriver::{Browser, CHROMEDRIVER, CHROMIUM};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_page_names_a_registrar_mistake_and_a_missing_span() {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(Path::new(tool).exists(), "{tool} missing: apt-get install chromium chromium-driver (tests/run does)");
    }
    assert!(!Path::new("/dev/dahdi/ctl").exists(), "this test needs a machine without DAHDI: its gateway must find no span");
    let scratch = Scratch::new("web-config");
    let shots = repo().join("target/test-output/web_config");
    std::fs::create_dir_all(&shots).expect("output folder");
    let registrar = Registrar::start(&scratch, "", &[]);
    let gateway_config = scratch.file("gateway.toml");
    std::fs::write(
        &gateway_config,
        format!(
            "[gateway]\nspan = 1\nspantype = \"e1\"\nlisten = \"127.0.0.1:{}\"\nmediation = \"127.0.0.1:{}\"\nstatus_file = \"{}.gateway.json\"\n",
            free_port(),
            free_port(),
            registrar.db.display()
        ),
    )
    .expect("gateway config");
    let log = std::fs::File::create(scratch.file("gateway.log")).expect("log");
    let _gateway = KillOnDrop(
        Command::new(bin("sba-gateway"))
            .arg("--config")
            .arg(&gateway_config)
            .env("HOLDFAST_LOG_STDERR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sba-gateway"),
    );
    let web = Web::start(&scratch.path, &registrar.db);

    let b = Browser::start(&scratch.path);
    b.goto(&format!("{}/login", web.base));
    b.wait("the login page", Duration::from_secs(10), |b| b.find("#password").is_some());
    b.type_into("#password", ADMIN_PASSWORD);
    b.click("#login");
    b.wait("the overview", Duration::from_secs(10), |b| b.text("#mode") == "primary");

    // The gateway is up but its span is not there: the page says it waits, and why.
    b.goto(&format!("{}/span", web.base));
    b.wait("the span page waiting for the span", Duration::from_secs(10), |b| b.text("#span-state") == "waiting for span");
    let page = b.text("main");
    assert!(page.contains("DAHDI is not loaded"), "the reason on the span page:\n{page}");
    assert_eq!(b.text("#bchannels"), "0 / 30");
    b.screenshot(&shots.join("span-waiting.png"));
    let m = web.metrics();
    assert_eq!(sample(&m, "sba_span_in_service", &[("span", "1"), ("type", "E1")]), Some(0.0));
    assert_eq!(sample(&m, "sba_span_alarm", &[("span", "1")]), Some(1.0));

    // A mistake in [registrar] shows with its key and line, as sba-registrar would refuse it.
    b.goto(&format!("{}/config", web.base));
    b.wait("the configuration check", Duration::from_secs(10), |b| b.find("#config-ok").is_some());
    let good = std::fs::read_to_string(&web.config).expect("web config");
    assert!(good.starts_with("[registrar]\n"), "{good}");
    let bad = good.replacen("[registrar]\n", "[registrar]\nmax_expires = 30\n", 1);
    std::fs::write(&web.config, &bad).expect("write config");
    b.wait("the registrar's error", Duration::from_secs(10), |b| {
        let errors = b.text("#config-errors");
        errors.contains("sba-registrar") && errors.contains("line 2: key `registrar.max_expires`") && errors.contains("below min_expires 60")
    });
    b.screenshot(&shots.join("config-registrar-error.png"));
    std::fs::write(&web.config, &good).expect("write config");
    b.wait("the check clean again", Duration::from_secs(10), |b| b.find("#config-ok").is_some());
    eprintln!("screenshots in {}", shots.display());
}
