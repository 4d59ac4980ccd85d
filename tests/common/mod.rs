//! Helpers shared by the CLI integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_itlsim"))
}

pub fn td(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("wire/testdata")
        .join(rel)
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run itlsim")
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("itlsim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// GET over plain HTTP/1.0 (enough for `itlsim serve` on 6970); returns the body.
pub fn http_get(port: u16, path: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            write!(s, "GET /{path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            let split = buf
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("HTTP header end");
            assert!(
                buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200"),
                "{}",
                String::from_utf8_lossy(&buf[..split])
            );
            return buf[split + 4..].to_vec();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "itlsim serve did not start listening on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Kills the child on drop, so a failing assertion does not leave a server running.
pub struct Child(pub std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `itlsim serve` of the two-node 12.5 example cluster with its ten ports at base..base+9
/// (pub: http, tvs, tftp, 6971, 6972; then sub the same). Killed when dropped.
pub fn serve_two_node(base: u16) -> Child {
    serve_two_node_with(base, &[])
}

/// [`serve_two_node`] with extra `itlsim serve` arguments.
pub fn serve_two_node_with(base: u16, extra: &[&str]) -> Child {
    let map = |h: &str, s: &str, p: u16| format!("{h}.{s}={p}");
    let cluster = Path::new(env!("CARGO_MANIFEST_DIR")).join("net/testdata/two-node.yaml");
    let args = vec![
        "serve".to_string(),
        "--cluster".into(),
        s(&cluster).into(),
        "--port-map".into(),
        map("cucm-pub", "http", base),
        "--port-map".into(),
        map("cucm-pub", "tvs", base + 1),
        "--port-map".into(),
        map("cucm-pub", "tftp", base + 2),
        "--port-map".into(),
        map("cucm-pub", "https6971", base + 3),
        "--port-map".into(),
        map("cucm-pub", "https6972", base + 4),
        "--port-map".into(),
        map("cucm-sub", "http", base + 5),
        "--port-map".into(),
        map("cucm-sub", "tvs", base + 6),
        "--port-map".into(),
        map("cucm-sub", "tftp", base + 7),
        "--port-map".into(),
        map("cucm-sub", "https6971", base + 8),
        "--port-map".into(),
        map("cucm-sub", "https6972", base + 9),
    ];
    Child(
        bin()
            .args(args.iter().map(String::as_str).chain(extra.iter().copied()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}
