//! `itlsim phone check`: one simulated phone (the same core as the simulations) against real
//! files — the trust lists it holds and the file a TFTP server now serves.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use itlsim_phone::event::{Blob, Mac};
use itlsim_phone::{CheckInput, Knobs, Model, NewFileKind, TvsReply, check_file};

#[derive(Args)]
pub struct CheckArgs {
    /// Phone model (8845, 7942, 7960, CIPC …): its family decides SHA-512, key sizes, CTL/ITL support.
    #[arg(long, default_value = "8845")]
    model: String,
    /// The phone's MAC (device name sent to TVS).
    #[arg(long, default_value = "001122334455")]
    mac: String,
    /// The ITL the phone holds now (none: a phone with no ITL, trust on first use).
    #[arg(long)]
    itl: Option<PathBuf>,
    /// The CTL the phone holds now.
    #[arg(long)]
    ctl: Option<PathBuf>,
    /// The configuration in effect (SEP<MAC>.cnf.xml, or its .sgn): its <TVS> list is where the
    /// phone would ask.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The file the TFTP server now serves (ITLFile.tlv, CTLFile.tlv, SEP<MAC>.cnf.xml.sgn …).
    file: PathBuf,
    /// Ask this TVS (HOST:PORT, real TLS) whenever the phone asks any TVS member. Without
    /// --config the phone is given a config whose <TVS> list is this one server.
    #[arg(long, value_name = "HOST:PORT")]
    tvs: Option<String>,
    /// With --tvs: the TLS client accepts only this certificate (PEM or DER), e.g. the TVS
    /// certificate exported from the cluster; anything else is a TLS failure (what a phone pinning
    /// that certificate sees). Without it, any certificate is accepted and the phone core judges
    /// the presented one against the ITL it holds (T-TVS).
    #[arg(long, value_name = "TVS.der", requires = "tvs")]
    tvs_cert: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

/// Strips a `.sgn` header if the cached config is signed (the <TVS> list is in the payload).
fn config_xml(bytes: Vec<u8>) -> Vec<u8> {
    match itlsim_wire::sgn::SignedFile::decode(&bytes) {
        Ok(f) => f.payload().to_vec(),
        Err(_) => bytes,
    }
}

pub fn check(a: CheckArgs) -> Result<ExitCode> {
    let model =
        Model::lookup(&a.model).ok_or_else(|| anyhow!("unknown phone model {}", a.model))?;
    let mac = Mac::parse(&a.mac).ok_or_else(|| anyhow!("bad MAC {} (12 hex digits)", a.mac))?;
    let name = a
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(kind) = NewFileKind::from_name(&name) else {
        bail!(
            "{}: cannot tell the file kind from its name (…ITL….tlv, …CTL….tlv, ….sgn, ….enc.sgn)",
            a.file.display()
        );
    };
    let tvs_addr: Option<std::net::SocketAddr> = match &a.tvs {
        None => None,
        Some(t) => Some(
            std::net::ToSocketAddrs::to_socket_addrs(t.as_str())
                .with_context(|| format!("--tvs {t}"))?
                .next()
                .ok_or_else(|| anyhow!("--tvs {t}: no address"))?,
        ),
    };
    let cached_config = match (a.config.as_deref().map(read).transpose()?.map(config_xml), tvs_addr) {
        (Some(c), _) => Some(c),
        (None, Some(addr)) => Some(
            format!(
                "<device><TVS><members><member priority=\"0\"><port>{}</port><address>{}</address></member></members></TVS></device>",
                addr.port(),
                addr.ip()
            )
            .into_bytes(),
        ),
        (None, None) => None,
    };
    let input = CheckInput {
        model,
        mac,
        held_ctl: a.ctl.as_deref().map(read).transpose()?.map(Blob::new),
        held_itl: a.itl.as_deref().map(read).transpose()?.map(Blob::new),
        cached_config,
        new_file: Blob::new(read(&a.file)?),
        kind,
        knobs: Knobs::default(),
    };
    // With --tvs, a real TLS exchange (the client accepts any certificate and reports it; the
    // phone core applies its T-TVS pinning to what was presented). Without it, every TVS member
    // is unreachable, which is what a phone sees when TVS is down.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let policy = match &a.tvs_cert {
        Some(p) => itlsim_net::tls::ServerCertPolicy::Pin(vec![crate::files::cert_der(p)?]),
        None => itlsim_net::tls::ServerCertPolicy::AcceptAny,
    };
    let client = itlsim_net::clients::TvsClient::new(policy);
    let mut asked = Vec::new();
    let mut tvs = |host: &itlsim_phone::event::Host, port: u16, frame: &[u8]| {
        let Some(addr) = tvs_addr else {
            asked.push(format!("{host}:{port} (unreachable: no --tvs)"));
            return TvsReply::Unreachable;
        };
        let Ok(msg) = itlsim_wire::tvs::Message::decode(frame, 65_535) else {
            return TvsReply::Unreachable;
        };
        match rt.block_on(client.exchange(addr, &[msg])) {
            Ok(x) => {
                asked.push(format!("{host}:{port} -> {addr}: answered"));
                match x.responses.first() {
                    Some(r) => TvsReply::Answer {
                        server_cert: Blob::new(x.server_cert),
                        frame: r.encode(),
                    },
                    None => TvsReply::Unreachable,
                }
            }
            Err(itlsim_net::clients::ClientError::Tls(e)) => {
                asked.push(format!("{host}:{port} -> {addr}: TLS failed: {e}"));
                TvsReply::TlsFailed
            }
            Err(e) => {
                asked.push(format!("{host}:{port} -> {addr}: {e}"));
                TvsReply::Unreachable
            }
        }
    };
    let report = check_file(&input, &mut tvs).map_err(|e| anyhow!("{}", e.0))?;
    if a.json {
        let v = serde_json::json!({
            "model": model.name,
            "file": a.file.display().to_string(),
            "verdict": report.render().lines().next().unwrap_or_default(),
            "exit_code": report.exit_code(),
            "tvs_asked": asked,
            "trace": report.trace.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", report.render());
        for q in &asked {
            println!("  TVS: {q}");
        }
    }
    Ok(ExitCode::from(
        u8::try_from(report.exit_code()).unwrap_or(1),
    ))
}
