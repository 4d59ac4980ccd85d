//! The `itlsim` binary on real files: outputs, exit codes (0 valid, 1 invalid, 2 malformed), and
//! files built by the CLI equal the reference vectors.

mod common;

use common::*;

#[test]
fn itl_show_exit_codes_follow_the_signature() {
    let ok = run(&["itl", "show", s(&td("tlv/ITLFile_sha1.tlv"))]);
    assert_eq!(ok.status.code(), Some(0));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.contains("Signature Status: valid"), "{out}");
    assert!(
        out.contains("CCM+TFTP") && out.contains("ac1e27c743c91f387589de554a359ff3aa70f284"),
        "{out}"
    );
    let bad = run(&["itl", "show", s(&td("tlv/neg_ITLFile_tampered.tlv"))]);
    assert_eq!(bad.status.code(), Some(1));
    let nosast = run(&["itl", "show", s(&td("tlv/neg_ITLFile_nosast.tlv"))]);
    assert_eq!(nosast.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nosast.stdout).contains("no SAST record matches"));
    let bytes = std::fs::read(td("tlv/ITLFile_sha1.tlv")).unwrap();
    let cut = tmp("cut.tlv");
    std::fs::write(&cut, &bytes[..500]).unwrap();
    let malformed = run(&["itl", "show", s(&cut)]);
    assert_eq!(malformed.status.code(), Some(2));
    let err = String::from_utf8_lossy(&malformed.stderr);
    assert!(
        err.contains("byte offset 420") && err.contains("record #1"),
        "{err}"
    );
}

#[test]
fn itl_show_json_lists_records_and_findings() {
    let out = run(&["itl", "show", "--json", s(&td("tlv/ITLFile_sast_only.tlv"))]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signature"]["status"], "valid");
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    assert_eq!(v["records"][0]["role"], "SAST");
    assert!(v["findings"][0].as_str().unwrap().starts_with("EMPTY_ITL"));
}

#[test]
fn itl_build_reproduces_the_reference_vector() {
    let out = tmp("ITLFile_v11.tlv");
    let k = |n: &str| td(&format!("keys/{n}.pem"));
    let ts = {
        // The vector's timestamp, read back through the CLI's JSON.
        let o = run(&["itl", "show", "--json", s(&td("tlv/ITLFile_v11_ec.tlv"))]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["header"]["timestamp"].as_u64().unwrap().to_string()
    };
    let sast = k("sast");
    let args = [
        "itl",
        "build",
        "--sast",
        s(&sast),
        "--record",
        &format!("CCM={}", s(&k("ccm"))),
        "--record",
        &format!("TFTP={}", s(&k("tftp_ec"))),
        "--record",
        &format!("TVS={}", s(&k("tvs"))),
        "--record",
        &format!("APP-SERVER={}", s(&k("app_server"))),
        "--digest",
        "sha512",
        "--signer-version",
        "1.1",
        "--timestamp",
        &ts,
        "-o",
        s(&out),
    ];
    let o = run(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(td("tlv/ITLFile_v11_ec.tlv")).unwrap()
    );
    let bad_role = run(&[
        "itl",
        "build",
        "--sast",
        s(&sast),
        "--record",
        "BOSS=x.pem",
        "-o",
        s(&out),
    ]);
    assert_eq!(bad_role.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("unknown role BOSS"));
}

#[test]
fn sgn_sign_verify_and_encrypt_decrypt_round_trip() {
    let src = td("src/SEP001122334455.cnf.xml");
    let signed = tmp("SEP001122334455.cnf.xml.sgn");
    let o = run(&[
        "sgn",
        "sign",
        "--key",
        s(&td("keys/ccm.pem")),
        "--digest",
        "sha512",
        "-o",
        s(&signed),
        s(&src),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ok = run(&[
        "sgn",
        "verify",
        "--itl",
        s(&td("tlv/ITLFile_sha1.tlv")),
        s(&signed),
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // An ITL without the signer (SAST only) cannot vouch for it.
    let no = run(&[
        "sgn",
        "verify",
        "--itl",
        s(&td("tlv/ITLFile_sast_only.tlv")),
        s(&signed),
    ]);
    assert_eq!(no.status.code(), Some(1));
    let wrong = run(&[
        "sgn",
        "verify",
        "--cert",
        s(&td("keys/unknown.crt.der")),
        s(&signed),
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    let usage = run(&["sgn", "verify", s(&signed)]);
    assert_eq!(usage.status.code(), Some(2));

    let enc = tmp("SEP001122334455.cnf.xml.enc.sgn");
    let o = run(&[
        "sgn",
        "encrypt",
        "--key",
        s(&td("keys/ccm.pem")),
        "--device",
        s(&td("keys/device.crt.der")),
        "-o",
        s(&enc),
        s(&src),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = run(&["sgn", "verify", "--cert", s(&td("keys/ccm.pem")), s(&enc)]);
    assert_eq!(v.status.code(), Some(0));
    let plain = tmp("decrypted.xml");
    let d = run(&[
        "sgn",
        "decrypt",
        "--device-key",
        s(&td("keys/device.pem")),
        "-o",
        s(&plain),
        s(&enc),
    ]);
    assert_eq!(
        d.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&d.stderr)
    );
    assert_eq!(std::fs::read(&plain).unwrap(), std::fs::read(&src).unwrap());
    let wrong_phone = run(&[
        "sgn",
        "decrypt",
        "--device-key",
        s(&td("keys/unknown.pem")),
        s(&enc),
    ]);
    assert_eq!(wrong_phone.status.code(), Some(2));
}

#[test]
fn tvs_decode_prints_the_captured_fields() {
    let o = run(&["tvs", "decode", "--json", s(&td("tvs/conn2.response.bin"))]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decoded"]["status"], "valid");
    assert_eq!(v["decoded"]["roles"][0], "SAST");
    assert_eq!(v["decoded"]["ttl"], 86400);
    let o = run(&["tvs", "decode", s(&td("tvs/conn2.request.bin"))]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("CP-8845-SEPAABBCCDDEEFF"));
    let garbage = tmp("garbage.bin");
    std::fs::write(&garbage, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let o = run(&["tvs", "decode", s(&garbage)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("protocol id 71"));
}

#[test]
fn phone_check_gives_the_verdict_and_the_rule_chain() {
    let itl = td("tlv/ITLFile_sha1.tlv");
    // A config signed by the ITL's CCM+TFTP certificate: accepted on a modern phone (exit 0).
    let ok = run(&[
        "phone",
        "check",
        "--model",
        "8845",
        "--itl",
        s(&itl),
        s(&td("sgn/sha512/SEP001122334455.cnf.xml.sgn")),
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.starts_with("ACCEPTED via ITL CCM+TFTP record"), "{out}");
    assert!(out.contains("T-CFG"), "{out}");
    // The same SHA-512 config on a SHA-1-only 7942 (F-LEG, §8): rejected (exit 1).
    let legacy = run(&[
        "phone",
        "check",
        "--model",
        "7942",
        "--itl",
        s(&itl),
        s(&td("sgn/sha512/SEP001122334455.cnf.xml.sgn")),
    ]);
    assert_eq!(legacy.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&legacy.stdout).contains("digest-unsupported"));
    // A new ITL signed by a SAST the phone does not hold, TVS unreachable: "Trust List Update Failed".
    let locked = run(&[
        "phone",
        "check",
        "--itl",
        s(&itl),
        "--config",
        s(&td("src/SEP001122334455.cnf.xml")),
        s(&td("tlv/ITLFile_sast1024.tlv")),
    ]);
    assert_eq!(locked.status.code(), Some(1));
    let out = String::from_utf8_lossy(&locked.stdout);
    assert!(
        out.contains("REJECTED: tvs-unreachable") && out.contains("T-ITL"),
        "{out}"
    );
    // Bad input: unknown model, unnamed file kind.
    assert_eq!(
        run(&["phone", "check", "--model", "9999x", s(&itl)])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["phone", "check", s(&td("src/SEP001122334455.cnf.xml"))])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn schema_describes_the_scenario_file_strictly() {
    let o = run(&["schema"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["additionalProperties"], false,
        "unknown top-level keys must be refused"
    );
    let props: Vec<&str> = v["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in ["clusters", "fleet", "timeline", "expectations", "knobs"] {
        assert!(props.contains(&k), "{k} missing from {props:?}");
    }
    assert_eq!(
        v["required"].as_array().unwrap().len(),
        3,
        "name, clusters, fleet are required"
    );
}

#[test]
fn phone_check_asks_a_real_tvs_over_tls() {
    let base = 20_000 + (std::process::id() % 500) as u16 * 10;
    let _server = serve_two_node(base);
    let itl = tmp("pub-ITLFile.tlv");
    std::fs::write(&itl, http_get(base, "ITLFile.tlv")).unwrap();
    let cfg = tmp("tvs-SEP001122334455.cnf.xml.sgn");
    std::fs::write(&cfg, http_get(base + 5, "SEP001122334455.cnf.xml.sgn")).unwrap();
    // The subscriber's config is signed by the subscriber's CallManager, which the publisher's
    // ITL does not carry (K12): the phone asks TVS, which vouches for it (E1).
    let tvs = format!("127.0.0.1:{}", base + 1);
    let o = run(&["phone", "check", "--itl", s(&itl), "--tvs", &tvs, s(&cfg)]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.starts_with("ACCEPTED via TVS"), "{out}");
    assert!(out.contains("answered"), "{out}");
    // The subscriber's TVS presents the subscriber's TVS certificate: also a TVS record of the
    // ITL (all TVS certificates are in it, §1.3), so it is accepted as well.
    let tvs_sub = format!("127.0.0.1:{}", base + 6);
    assert_eq!(
        run(&[
            "phone",
            "check",
            "--itl",
            s(&itl),
            "--tvs",
            &tvs_sub,
            s(&cfg)
        ])
        .status
        .code(),
        Some(0)
    );
    // Nothing listening: TVS unreachable, the config is rejected.
    let o = run(&[
        "phone",
        "check",
        "--itl",
        s(&itl),
        "--tvs",
        "127.0.0.1:9",
        s(&cfg),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("tvs-unreachable"));
    // --tvs-cert pins the TLS handshake to one certificate: the publisher's TVS presents its own,
    // not the vectors' CallManager certificate, so the handshake fails and the config is rejected.
    let o = run(&[
        "phone",
        "check",
        "--itl",
        s(&itl),
        "--tvs",
        &tvs,
        "--tvs-cert",
        s(&td("keys/ccm.crt.der")),
        s(&cfg),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("TLS failed"), "{out}");
}

#[test]
fn a_closed_pipe_ends_quietly_without_a_backtrace() {
    use std::io::Read;
    let mut child = bin()
        .args(["itl", "show", s(&td("tlv/ITLFile_sha1.tlv"))])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then close our end of the pipe (like `| head -c1`).
    let mut out = child.stdout.take().unwrap();
    let mut b = [0u8; 1];
    out.read_exact(&mut b).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        matches!(o.status.code(), Some(0) | Some(141)),
        "{:?}",
        o.status
    );
}

#[test]
fn serve_imports_a_real_clusters_certificate_and_signs_with_its_key() {
    // DIR/<cluster>/<node>/<purpose>.pem: the vectors' CallManager (key + certificate) becomes the
    // publisher's CallManager identity of the served cluster.
    let dir = tmp("import-certs");
    let node = dir.join("LAB/cucm-pub");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::copy(td("keys/ccm.pem"), node.join("CallManager.pem")).unwrap();
    let base = 25_000 + (std::process::id() % 500) as u16 * 10;
    let _server = serve_two_node_with(base, &["--import-certs", s(&dir)]);
    let itl = tmp("imported-ITLFile.tlv");
    std::fs::write(&itl, http_get(base, "ITLFile.tlv")).unwrap();
    let o = run(&["itl", "show", "--json", s(&itl)]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sha1s: Vec<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["certificate_sha1"].as_str())
        .collect();
    assert!(
        sha1s.contains(&"ac1e27c743c91f387589de554a359ff3aa70f284"),
        "{sha1s:?}"
    );
    // The publisher's configs are now signed with the imported key.
    let cfg = tmp("imported-SEP001122334455.cnf.xml.sgn");
    std::fs::write(&cfg, http_get(base, "SEP001122334455.cnf.xml.sgn")).unwrap();
    let o = run(&[
        "sgn",
        "verify",
        "--cert",
        s(&td("keys/ccm.crt.der")),
        s(&cfg),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn phones_boot_against_itlsim_serve_in_another_process() {
    // issue 7 "point it at other servers": a fleet of phone cores over real TFTP/HTTP against an
    // `itlsim serve` process. The test's port map is not the offset scheme, so HTTP and HTTPS of
    // the TFTP host are routed explicitly.
    let base = 22_500 + (std::process::id() % 500) as u16 * 10;
    let _server = serve_two_node(base);
    let itl = http_get(base, "ITLFile.tlv"); // waits until it listens
    let tftp = format!("127.0.0.1:{}", base + 2);
    let http = format!("127.0.0.1.http=127.0.0.1:{base}");
    let https = format!("127.0.0.1.https6971=127.0.0.1:{}", base + 3);
    let o = run(&[
        "phones", "--tftp", &tftp, "--route", &http, "--route", &https, "--count", "4", "--json",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let phones: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(phones.len(), 4);
    let signer = run(&[
        "itl",
        "show",
        "--json",
        s(&{
            let p = tmp("phones-ITLFile.tlv");
            std::fs::write(&p, &itl).unwrap();
            p
        }),
    ]);
    let signer: serde_json::Value = serde_json::from_slice(&signer.stdout).unwrap();
    let serial = signer["header"]["serial"].as_str().unwrap().to_string();
    for (i, p) in phones.iter().enumerate() {
        assert_eq!(p["device"], format!("SEP00112233445{}", 5 + i), "{p}");
        assert_eq!(p["end"], "registered", "{p}");
        // Factory-new: the served ITL is installed on first use (§3.1), signed by ITLRecovery (V12).
        let held = p["itl_signer"].as_str().unwrap();
        assert!(held.contains("ITLRECOVERY_cucm-pub"), "{held}");
        assert!(
            held.ends_with(&format!("serial {serial}")),
            "{held} vs {serial}"
        );
        assert!(
            p["trace"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_str().unwrap().contains("T-CFG")),
            "{p}"
        );
    }
    // Phones that hold another cluster's ITL (a migration without bulk import): the served ITL's
    // signer is no SAST of theirs and they have no TVS to ask: locked, exit 1.
    let o = run(&[
        "phones",
        "--tftp",
        &tftp,
        "--route",
        &http,
        "--count",
        "2",
        "--itl",
        s(&td("tlv/ITLFile_sha1.tlv")),
        "--json",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for l in out.lines() {
        let p: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(p["end"], "not-registered", "{p}");
        assert_eq!(p["locked"], "no-tvs", "{p}");
        assert!(
            p["status"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m.as_str().unwrap().contains("Trust List update failed")),
            "{p}"
        );
    }
    // Bad input is a usage error naming the argument.
    let o = run(&["phones", "--tftp", &tftp, "--route", "nonsense"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("route \"nonsense\""));
}

#[test]
fn bench_boot_measures_l_and_boots_phones_through_tvs() {
    // Small N: this checks the command and what it measures, not the figures (a debug build).
    let o = run(&[
        "bench",
        "boot",
        "--phones",
        "20",
        "--concurrency",
        "8",
        "--json",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 20);
    assert_eq!(v["registered"], 20);
    assert_eq!(v["errors"], 0);
    for k in ["h", "t", "v", "l", "phones_per_s", "ratio"] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k}: {v}");
    }
    // Every phone asked TVS over TLS once (its held ITL does not carry the new signer, §6.3 R1).
    let tvs = v["latency"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "tvs")
        .expect("TVS operations");
    assert_eq!(tvs["count"], 20);
    assert_eq!(tvs["failed"], 0);
}

/// bad-inputs T16, T20 and §2.2: a weak signer key, a CTL served under an ITL's name and a
/// signed config served as another device's are reported, the last one as a trust failure.
#[test]
fn findings_for_weak_keys_swapped_lists_and_substituted_configs() {
    let o = run(&["itl", "show", "--json", s(&td("tlv/ITLFile_sast1024.tlv"))]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "an RSA-1024 signer still verifies"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["findings"].as_array().unwrap().iter().any(|f| f
            .as_str()
            .unwrap()
            .starts_with("WEAK_KEY: signer key RSA 1024")),
        "{v}"
    );
    let as_itl = tmp("swapped-ITLFile.tlv");
    std::fs::copy(td("tlv/CTLFile.tlv"), &as_itl).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&run(&["itl", "show", "--json", s(&as_itl)]).stdout).unwrap();
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("FILENAME_MISMATCH")),
        "{v}"
    );
    let other = tmp("SEP00112233AAAA.cnf.xml.sgn");
    std::fs::copy(td("sgn/sha1/SEP001122334455.cnf.xml.sgn"), &other).unwrap();
    let itl = td("tlv/ITLFile_sha1.tlv");
    let o = run(&["sgn", "verify", "--json", "--itl", s(&itl), s(&other)]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a substituted config is a trust failure"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["signature"]["status"], "invalid");
    assert!(
        v["findings"][0]
            .as_str()
            .unwrap()
            .starts_with("CONFIG_SUBSTITUTION")
    );
    // The same bytes under their own name verify.
    let own = td("sgn/sha1/SEP001122334455.cnf.xml.sgn");
    assert_eq!(
        run(&["sgn", "verify", "--itl", s(&itl), s(&own)])
            .status
            .code(),
        Some(0)
    );
}

/// issue 4 / bad-inputs §4: the accept loop survives running out of file descriptors (EMFILE):
/// `itlsim serve` under `ulimit -n 48`, 80 connections held open, then released; the server
/// logged the EMFILE back-off and serves the next client.
#[test]
fn serve_survives_emfile_and_serves_again() {
    use std::io::{Read, Write};
    let base = 27_500 + (std::process::id() % 500) as u16 * 10;
    let cluster =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("net/testdata/two-node.yaml");
    let log = tmp("emfile-serve.log");
    let mut maps = String::new();
    for (i, (h, sv)) in [
        ("cucm-pub", "http"),
        ("cucm-pub", "tvs"),
        ("cucm-pub", "tftp"),
        ("cucm-pub", "https6971"),
        ("cucm-pub", "https6972"),
        ("cucm-sub", "http"),
        ("cucm-sub", "tvs"),
        ("cucm-sub", "tftp"),
        ("cucm-sub", "https6971"),
        ("cucm-sub", "https6972"),
    ]
    .iter()
    .enumerate()
    {
        maps.push_str(&format!(" --port-map {h}.{sv}={}", base + i as u16));
    }
    let _server = Child(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 48 && exec '{}' serve --cluster '{}'{maps} 2>'{}'",
                env!("CARGO_BIN_EXE_itlsim"),
                cluster.display(),
                log.display()
            ))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let itl = http_get(base, "ITLFile.tlv"); // waits until it listens
    let mut held = Vec::new();
    for _ in 0..80 {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", base)) {
            held.push(s);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(800));
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", base)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        write!(s, "GET /ITLFile.tlv HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        if buf.starts_with(b"HTTP/1.") && buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let at = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            break buf[at..].to_vec();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not served after EMFILE"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(body, itl, "the same ITL after the EMFILE episode");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("Too many open files"),
        "the server never ran out of descriptors, so the test proved nothing: {text}"
    );
}
