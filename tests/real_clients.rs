//! `itlsim serve` against clients nobody here wrote (issue 4): curl over TFTP (default and
//! blksize 1428), HTTP 6970 and HTTPS 6971/6972, tftp-hpa's `tftp`, and `openssl s_client`
//! against TVS. The CI script installs them from Debian's packages (`make deps`); a missing
//! client fails the test with the command that installs it.

mod common;

use std::process::Command;

use common::*;

fn have(tool: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{tool} is not installed: run `make deps` (apt-get install curl openssl tftp-hpa)"
    );
}

fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh").arg("-c").arg(cmd).output().expect("sh")
}

#[test]
fn real_clients_get_the_models_bytes_and_certificates() {
    for t in ["curl", "openssl", "tftp"] {
        have(t);
    }
    let base = 30_000 + (std::process::id() % 270) as u16 * 10;
    let _server = serve_two_node(base);
    // The model's ITL over HTTP 6970 (waits for the server to listen), as the reference.
    let itl = http_get(base, "ITLFile.tlv");
    let dir = tmp("real-clients");
    std::fs::create_dir_all(&dir).unwrap();
    // curl over TFTP, default block size and RFC 2348 blksize 1428.
    for (name, opt) in [
        ("tftp-512.tlv", ""),
        ("tftp-1428.tlv", "--tftp-blksize 1428"),
    ] {
        let out = dir.join(name);
        let o = sh(&format!(
            "curl -sS --max-time 20 {opt} -o {} tftp://127.0.0.1:{}/ITLFile.tlv",
            out.display(),
            base + 2
        ));
        assert!(
            o.status.success(),
            "curl tftp {opt}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            itl,
            "curl tftp {opt}: bytes differ from the model's ITL"
        );
    }
    // tftp-hpa's client.
    let out = dir.join("tftp-hpa.tlv");
    let o = sh(&format!(
        "cd {} && timeout 20 tftp -m binary 127.0.0.1 {} -c get ITLFile.tlv tftp-hpa.tlv",
        dir.display(),
        base + 2
    ));
    assert!(
        o.status.success(),
        "tftp-hpa: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), itl, "tftp-hpa: bytes differ");
    // The file parses and verifies with itlsim itl show.
    let o = run(&["itl", "show", s(&out)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // A missing file is TFTP error 1.
    let o = sh(&format!(
        "curl -sS --max-time 20 -o /dev/null tftp://127.0.0.1:{}/NoSuchFile.cnf.xml",
        base + 2
    ));
    assert!(!o.status.success());
    // HTTPS 6971 presents the CallManager(-ECDSA) certificate and 6972 the tomcat one: the
    // certificate printed by openssl, given back to curl as the only CA, validates the
    // connection and the body equals the model's file.
    for (port, service) in [(base + 3, "6971"), (base + 4, "6972")] {
        let pem = dir.join(format!("{service}.pem"));
        let o = sh(&format!(
            "echo | timeout 20 openssl s_client -connect 127.0.0.1:{port} -showcerts 2>/dev/null | openssl x509 -outform PEM > {}",
            pem.display()
        ));
        assert!(
            o.status.success() && std::fs::metadata(&pem).is_ok_and(|m| m.len() > 0),
            "openssl s_client {service}"
        );
        let subject = sh(&format!(
            "openssl x509 -in {} -noout -subject",
            pem.display()
        ));
        let subject = String::from_utf8_lossy(&subject.stdout).to_string();
        assert!(subject.contains("cucm-pub"), "{service}: {subject}");
        let body = dir.join(format!("{service}.tlv"));
        let o = sh(&format!(
            "curl -sS --max-time 20 --cacert {} --resolve cucm-pub.lab.example:{port}:127.0.0.1 -o {} https://cucm-pub.lab.example:{port}/ITLFile.tlv",
            pem.display(),
            body.display()
        ));
        assert!(
            o.status.success(),
            "curl https {service}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            std::fs::read(&body).unwrap(),
            itl,
            "https {service}: bytes differ"
        );
    }
    // openssl s_client against TVS shows the node's TVS certificate (TLS on 2445, §6.1).
    let o = sh(&format!(
        "echo | timeout 20 openssl s_client -connect 127.0.0.1:{} 2>/dev/null | openssl x509 -noout -subject",
        base + 1
    ));
    assert!(o.status.success(), "openssl s_client TVS");
    let subject = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(subject.contains("cucm-pub"), "TVS subject: {subject}");
}
