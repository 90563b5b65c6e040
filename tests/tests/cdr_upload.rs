//! Call records home (issue 13), from real calls: the survivability topology with Kamailio as
//! the central site, sba-registrar in the SBA's namespace, sba-mediation and sba-gateway (its
//! simulated span's far end a PSTN exchange) at the PSTN side, a sipp phone (extension 3001)
//! registered through the SBA. Every record is one sba-mediation wrote for a call placed through
//! the services: PSTN callers dialling 3001's DID (`sbactl pstn call`, with the WAN up and
//! down) and 3001 calling a PSTN number in survival. sba-web posts them to a receiver at the
//! central site that the test runs (tests/cdr/receiver.py: HTTPS with the test's own CA,
//! records stored once by id, each answer a second after it stored the batch). While the WAN is
//! cut the records queue (sba_cdr_upload_pending on /metrics counts them, none goes out);
//! sba-web is killed with SIGKILL during the outage, and again in the middle of the upload
//! after failback, between the receiver storing a batch and its answer. In the end every call's
//! record is at the central site once.
use holdfast_tests::bins::{bin, repo};
use holdfast_tests::branch::Sba;
use holdfast_tests::kamailio::Kamailio;
use holdfast_tests::netns::{KillOnDrop, Topology, CENTRAL, PSTN, SBA_PSTN};
use holdfast_tests::phones::{call, Answerer, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::wait::wait_until;
use holdfast_tests::web::{parse, sample};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const DOMAIN: &str = "central.example";
const RECEIVER_PORT: u16 = 8443;
/// sba-gateway, in the PSTN namespace beside sba-mediation.
const GATEWAY: &str = "127.0.0.1:5080";
/// 3001's DID as the PSTN dials it (national), and the number 3001 calls.
const DID: &str = "5559873001";
const PSTN_NUMBER: &str = "+4930123456";
/// Records per POST.
const BATCH: usize = 5;
const WAIT: Duration = Duration::from_secs(30);

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA and the receiver's certificate for the central site's address.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key, cert, key, csr) = (dir.join("ca.pem"), dir.join("ca.key"), dir.join("central.pem"), dir.join("central.key"), dir.join("central.csr"));
    let ext = dir.join("san.ext");
    std::fs::write(&ext, format!("subjectAltName=IP:{CENTRAL}\nbasicConstraints=CA:FALSE\n")).expect("ext");
    run(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=holdfast test CA"]).arg("-keyout").arg(&ca_key).arg("-out").arg(&ca));
    run(Command::new("openssl").args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=central"]).arg("-keyout").arg(&key).arg("-out").arg(&csr));
    run(Command::new("openssl").args(["x509", "-req", "-days", "2", "-CAcreateserial"]).arg("-in").arg(&csr).arg("-CA").arg(&ca).arg("-CAkey").arg(&ca_key).arg("-out").arg(&cert).arg("-extfile").arg(&ext));
    (ca, cert, key)
}

/// The records at the central site, in the order it stored them.
fn received(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The Call-IDs of the records in the appliance's database (`sbactl cdr --csv`).
fn stored_calls(db: &Path) -> Vec<String> {
    let out = Command::new(bin("sbactl")).arg("--db").arg(db).args(["cdr", "--csv"]).output().expect("sbactl");
    assert!(out.status.success(), "sbactl cdr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().skip(1).filter_map(|l| l.split(',').next().map(str::to_string)).collect()
}

#[test]
fn call_records_of_real_calls_go_home_once_each_through_a_cut_and_kill_9() {
    let scratch = Scratch::new("cdr-upload");
    let topo = Topology::new();
    let kam = Kamailio::start(&topo, &scratch.path, DOMAIN, &[("3001", "pw-3001")]);
    // sba-mediation where the registrar sends numbers in survival; the PSTN's calls to the
    // branch's DIDs back to the registrar, which finds the extension's binding in any mode.
    let extra = format!(
        "[mediation]\nlisten = \"{PSTN}:5060\"\nregistrar = \"{SBA_PSTN}:5060\"\n\n\
         [[mediation.rules]]\nname = \"national\"\npattern = '1?([2-9]\\d{{9}})'\nreplace = '+1$1'\n\n\
         [[mediation.routes]]\nname = \"world\"\npattern = '\\+\\d{{6,15}}'\nusage = \"national\"\ntrunks = [\"pstn\"]\n\n\
         [[mediation.trunks]]\nname = \"pstn\"\nkind = \"gateway\"\naddress = \"{GATEWAY}\"\ntransport = \"udp\"\n\n\
         [[mediation.inbound]]\npattern = '\\+1555987(3\\d{{3}})'\nuser = '$1'\n\n\
         [gateway]\nsimulated = true\nmediation = \"{PSTN}:5060\"\nstatus_file = \"{}.gateway.json\"\nexchange_control = \"{}\"\n\n\
         [[directory]]\nsite = \"leeds\"\nfirst = \"3000\"\nlast = \"3099\"\ne164 = \"+15559873000\"\n",
        scratch.file("sba.db").display(),
        scratch.file("pstn.sock").display()
    );
    let sba = Sba::start_with(&topo, &scratch, DOMAIN, kam.addr.port(), ["site = \"leeds\"", "", &extra]);
    let sba_config = sba.config.clone();
    let start_in_pstn = |service: &str| {
        let log = std::fs::File::create(scratch.file(&format!("{service}.log"))).expect("log");
        KillOnDrop(
            topo.pstn
                .command(bin(service).to_str().expect("utf-8 path"))
                .arg("--config")
                .arg(&sba_config)
                .env("HOLDFAST_LOG_STDERR", "1")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {service}: {e}")),
        )
    };
    let _mediation = start_in_pstn("sba-mediation");
    let _gateway = start_in_pstn("sba-gateway");
    let service_log = |service: &str| std::fs::read_to_string(scratch.file(&format!("{service}.log"))).unwrap_or_default();

    let (ca, cert, key) = certificates(&scratch.path);
    let (records, reposts) = (scratch.file("received.jsonl"), scratch.file("reposts"));
    let receiver_log = std::fs::File::create(scratch.file("receiver.log")).expect("log");
    let _receiver = KillOnDrop(
        topo.central
            .command("/usr/bin/python3")
            .arg(repo().join("tests/cdr/receiver.py"))
            .args([CENTRAL.to_string(), RECEIVER_PORT.to_string()])
            .args([&cert, &key, &records, &reposts])
            .arg("1")
            .stdout(Stdio::null())
            .stderr(receiver_log)
            .spawn()
            .expect("start the receiver (python3)"),
    );
    let web_config = scratch.file("web.toml");
    std::fs::write(
        &web_config,
        format!(
            "[registrar]\ndb = \"{}\"\nsite = \"leeds\"\n\n[web]\nlisten = \"127.0.0.1:8080\"\ntls = false\n\n\
             [cdr]\nupload = \"https://{CENTRAL}:{RECEIVER_PORT}/cdr\"\nca = \"{}\"\nbatch = {BATCH}\n",
            sba.db.display(),
            ca.display()
        ),
    )
    .expect("web config");
    let start_web = || {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(scratch.file("web.log")).expect("log");
        KillOnDrop(
            topo.sba
                .command(bin("sba-web").to_str().expect("utf-8 path"))
                .arg("--config")
                .arg(&web_config)
                .env("HOLDFAST_LOG_STDERR", "1")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sba-web"),
        )
    };
    let pending = || {
        let out = topo.sba.output("curl", &["-sf", "--max-time", "5", "http://127.0.0.1:8080/metrics"]);
        sample(&parse(&String::from_utf8_lossy(&out.stdout)), "sba_cdr_upload_pending", &[])
    };
    let mut web = start_web();

    // Extension 3001 registers through the SBA; it answers every call.
    let phone = PhoneConfig::new("3001", "pw-3001", DOMAIN, SocketAddr::from((Topology::phone_ip(1), 5060)), sba.addr);
    let phone = Answerer::phone(&topo.phones, &scratch.path, &phone, 300);
    assert!(phone.wait_registrations(0, Duration::from_secs(10)), "3001 not registered:\n{}", phone.log());
    // A PSTN caller dials 3001's DID; the exchange hangs up a second after the answer.
    let did_call = || {
        let answered = phone.answered();
        let out = Command::new(bin("sbactl")).args(["pstn", "call", DID, "--hangup-after", "1", "--config"]).arg(&sba_config).output().expect("sbactl");
        assert!(out.status.success(), "sbactl pstn call: {}", String::from_utf8_lossy(&out.stderr));
        wait_until("3001 answers the DID call", WAIT, || phone.answered() > answered);
    };
    // 3001 calls the PSTN `n` times (two at a time), each call held 300 ms.
    let outbound_calls = |n: u32| {
        let from = SocketAddr::from((Topology::phone_ip(1), 5070));
        let out = call(&topo.phones, from, sba.addr, "3001", PSTN_NUMBER, DOMAIN, Duration::from_millis(300)).calls(n, 2).run(&scratch.path, 60);
        assert!(out.status.success(), "3001's PSTN calls failed:\n{}", service_log("sba-mediation"));
    };

    // WAN up: two DID calls; their records go home.
    did_call();
    did_call();
    wait_until("the DID calls' 2 records at the central site", WAIT, || received(&records).len() == 2);
    wait_until("their upload acknowledged (nothing pending on /metrics)", WAIT, || pending() == Some(0.0));
    let first = received(&records);
    assert!(
        first.iter().all(|r| r["direction"] == "inbound" && r["callee"] == format!("+1{DID}") && r["answered_at"].is_number()),
        "{first:?}"
    );

    // WAN cut: survival; calls out to the PSTN and in from it. Their records queue.
    topo.cut_wan();
    assert!(sba.wait_mode("survival", Duration::from_secs(10)).is_some(), "no survival:\n{}", sba.log());
    outbound_calls(6);
    did_call();
    wait_until("9 records in the database", WAIT, || stored_calls(&sba.db).len() == 9);
    wait_until("7 records pending on /metrics", WAIT, || pending() == Some(7.0));
    assert_eq!(received(&records).len(), 2, "records went out while the WAN was down");
    // kill -9 during the outage; more calls while sba-web is down and after it is back.
    drop(web);
    outbound_calls(6);
    web = start_web();
    outbound_calls(6);
    wait_until("21 records in the database", WAIT, || stored_calls(&sba.db).len() == 21);
    wait_until("19 records pending on /metrics", WAIT, || pending() == Some(19.0));
    assert_eq!(received(&records).len(), 2, "records went out while the WAN was down");

    // Failback: the queue goes home; sba-web is killed once the central site has stored a
    // batch (it answers a second later) and started again.
    topo.restore_wan();
    assert!(sba.wait_mode("pass-through", Duration::from_secs(15)).is_some(), "no failback:\n{}", sba.log());
    wait_until("the upload under way", WAIT, || received(&records).len() > 2);
    drop(web);
    let at_kill = received(&records).len();
    let _web = start_web();
    wait_until("all 21 records at the central site", Duration::from_secs(60), || received(&records).len() == 21);
    assert!(at_kill < 21, "the upload was over before the kill");
    wait_until("nothing pending on /metrics", WAIT, || pending() == Some(0.0));

    let home = received(&records);
    let ids: HashSet<&str> = home.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), home.len(), "a record was stored twice");
    let calls_home: HashSet<&str> = home.iter().filter_map(|r| r["call_id"].as_str()).collect();
    let calls: HashSet<String> = stored_calls(&sba.db).into_iter().collect();
    assert_eq!(calls.len(), 21, "a call without its record, or one record too many");
    for call_id in &calls {
        assert!(calls_home.contains(call_id.as_str()), "call {call_id}'s record never went home\n{}", service_log("web"));
    }
    let outbound = home.iter().filter(|r| r["direction"] == "outbound" && r["callee"] == PSTN_NUMBER).count();
    assert_eq!(outbound, 18, "3001's 18 PSTN calls");
    let reposted: u64 = std::fs::read_to_string(&reposts).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    // Only the batch stored but not yet answered at the kill is posted again (then recognised).
    assert!(reposted <= BATCH as u64, "{reposted} records posted again");
    eprintln!("killed with {at_kill} of 21 stored; {reposted} records posted again after kill -9 (recognised by id, not stored twice)");
}
