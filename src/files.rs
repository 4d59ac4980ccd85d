//! Commands on real files: `itl show|build`, `sgn show|verify|sign|encrypt|decrypt`, `tvs decode`.
//! Exit codes: 0 valid, 1 signature not valid, 2 malformed input or usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use itlsim_wire::cert::CertInfo;
use itlsim_wire::crypto::{PemBundle, PublicKey, SigningKey};
use itlsim_wire::enc::{EncryptOptions, EncryptedFile};
use itlsim_wire::header::{Envelope, HeaderInfo, Layout};
use itlsim_wire::sgn::{SignOptions, SignedFile};
use itlsim_wire::tags::{Digest, Role};
use itlsim_wire::tlv::{Record, RecordStyle, TrustList, TrustListBuilder};
use itlsim_wire::tvs::{Command as TvsCommand, Message};
use itlsim_wire::{DecodeError, VerifyError};
use serde_json::{Value, json};

pub const EXIT_INVALID: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Subcommand)]
pub enum ItlCmd {
    /// Print a trust list like CUCM `show itl` / `show ctl` and check its signature.
    Show {
        /// The .tlv file.
        file: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Build and sign a trust list.
    Build(BuildArgs),
}

#[derive(Args)]
pub struct BuildArgs {
    /// PEM with the SAST private key and certificate; the first one signs. Repeat for a second
    /// SAST record (at most 2).
    #[arg(long, required = true)]
    sast: Vec<PathBuf>,
    /// ROLE=CERT: a record (roles SAST, CCM, CCM+TFTP, TFTP, CAPF, APP-SERVER, TVS or a number).
    #[arg(long = "record", value_name = "ROLE=CERT")]
    records: Vec<String>,
    /// Signature digest.
    #[arg(long, value_enum, default_value = "sha1")]
    digest: DigestArg,
    /// Signer version (tag 28): 1.0, or 1.1 for EC TFTP records. The CUCM layout omits it.
    #[arg(long, default_value = "1.0")]
    signer_version: String,
    /// Field order: the reference tool's, or CUCM's (`show ctl`).
    #[arg(long, value_enum, default_value = "reference")]
    layout: LayoutArg,
    /// Name bound into the signature (ITLFile.tlv also for ITLSEP<MAC>.tlv files).
    #[arg(long, default_value = "ITLFile.tlv")]
    filename: String,
    /// UNIX seconds (default: now).
    #[arg(long)]
    timestamp: Option<u32>,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DigestArg {
    Sha1,
    Sha512,
}

impl From<DigestArg> for Digest {
    fn from(d: DigestArg) -> Self {
        match d {
            DigestArg::Sha1 => Digest::Sha1,
            DigestArg::Sha512 => Digest::Sha512,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    Reference,
    Cucm,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::Reference => Layout::Reference,
            LayoutArg::Cucm => Layout::Cucm,
        }
    }
}

#[derive(Subcommand)]
pub enum SgnCmd {
    /// Print the header of a .sgn or .enc.sgn; with --cert or --itl, check the signature.
    Show(CheckArgs),
    /// Check the signature of a .sgn or .enc.sgn (needs --cert or --itl).
    Verify(CheckArgs),
    /// Sign a file (e.g. SEP<MAC>.cnf.xml → SEP<MAC>.cnf.xml.sgn).
    Sign(SignArgs),
    /// Encrypt a config to a phone certificate and sign it (.enc.sgn).
    Encrypt {
        /// The phone's certificate (LSC or MIC), PEM or DER.
        #[arg(long)]
        device: PathBuf,
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Decrypt an .enc.sgn with the phone's private key.
    Decrypt {
        /// PEM with the phone's private key.
        #[arg(long)]
        device_key: PathBuf,
        #[arg(short, long)]
        output: Option<PathBuf>,
        file: PathBuf,
    },
}

/// What `sgn sign` and `sgn encrypt` share.
#[derive(Args)]
pub struct SignArgs {
    /// PEM with the signer's private key and certificate (the TFTP/CallManager identity).
    #[arg(long)]
    key: PathBuf,
    #[arg(long, value_enum, default_value = "sha1")]
    digest: DigestArg,
    /// Name bound into the signature (default: the output file's name).
    #[arg(long)]
    filename: Option<String>,
    /// UNIX seconds (default: now).
    #[arg(long)]
    timestamp: Option<u32>,
    /// Output file (default: input + .sgn / .enc.sgn).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The file to sign.
    file: PathBuf,
}

impl SignArgs {
    /// Signer key and certificate, input bytes, output path, signed name, timestamp.
    fn resolve(
        &self,
        suffix: &str,
    ) -> Result<(SigningKey, CertInfo, Vec<u8>, PathBuf, String, u32)> {
        let (k, cert) = key_and_cert(&self.key)?;
        let input = read(&self.file)?;
        let out = self
            .output
            .clone()
            .unwrap_or_else(|| default_output(&self.file, suffix));
        let name = self.filename.clone().unwrap_or_else(|| file_name(&out));
        Ok((
            k,
            cert,
            input,
            out,
            name,
            self.timestamp.unwrap_or_else(now),
        ))
    }
}

#[derive(Args)]
pub struct CheckArgs {
    /// The signer's certificate (PEM or DER).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// An ITL or CTL: the signer is looked up among its TFTP / CCM+TFTP records by serial.
    #[arg(long)]
    itl: Option<PathBuf>,
    #[arg(long)]
    json: bool,
    file: PathBuf,
}

#[derive(Subcommand)]
pub enum TvsCmd {
    /// Decode one captured TVS frame (request or response).
    Decode {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn malformed(path: &Path, e: DecodeError) -> anyhow::Error {
    anyhow!(
        "{}: malformed at byte offset {}: {} [{}]",
        path.display(),
        e.offset,
        e.kind,
        e.code()
    )
}

fn now() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Writes atomically: a temp file beside the target, then rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))
}

fn load_pem(path: &Path) -> Result<PemBundle> {
    PemBundle::parse(&read(path)?).with_context(|| format!("{}", path.display()))
}

fn key_and_cert(path: &Path) -> Result<(SigningKey, CertInfo)> {
    let b = load_pem(path)?;
    let key = match (b.key, b.key_note) {
        (Some(k), _) => k,
        (None, Some(note)) => bail!("{}: {note}", path.display()),
        (None, None) => bail!("{}: no private key", path.display()),
    };
    let der = b
        .certs
        .first()
        .ok_or_else(|| anyhow!("{}: no certificate", path.display()))?;
    let cert = CertInfo::parse(der).with_context(|| format!("{}", path.display()))?;
    Ok((key, cert))
}

/// The first certificate of a PEM or DER file, as DER.
pub(crate) fn cert_der(path: &Path) -> Result<Vec<u8>> {
    let b = load_pem(path)?;
    let der = b
        .certs
        .first()
        .ok_or_else(|| anyhow!("{}: no certificate", path.display()))?;
    CertInfo::parse(der).with_context(|| format!("{}", path.display()))?;
    Ok(der.to_vec())
}

fn cert_file(path: &Path) -> Result<CertInfo> {
    let b = load_pem(path)?;
    let der = b
        .certs
        .first()
        .ok_or_else(|| anyhow!("{}: no certificate", path.display()))?;
    CertInfo::parse(der).with_context(|| format!("{}", path.display()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn time_text(ts: Option<u32>) -> String {
    ts.map(|t| {
        let days = i64::from(t) / 86_400;
        let secs = i64::from(t) % 86_400;
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    })
    .unwrap_or_else(|| "-".into())
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn header_json(info: &HeaderInfo) -> Value {
    json!({
        "version": format!("{}.{}", info.version.0, info.version.1),
        "header_length": info.header_length,
        "signer_version": info.signer_version.map(|(a, b)| format!("{a}.{b}")),
        "signer_name": info.signer_name_text(),
        "issuer_name": info.issuer_text(),
        "serial": info.serial_hex(),
        "digest": info.digest.to_string(),
        "signature_bytes": info.signature.len(),
        "filename": info.filename_text(),
        "timestamp": info.timestamp,
        "padding": info.padding,
    })
}

fn print_header(info: &HeaderInfo, total: usize) {
    println!("Version:          {}.{}", info.version.0, info.version.1);
    println!(
        "Header Length:    {} bytes (file {} bytes)",
        info.header_length, total
    );
    if let Some((a, b)) = info.signer_version {
        println!("Signer Version:   {a}.{b}");
    }
    println!("Signer Name:      {}", info.signer_name_text());
    println!("Issuer Name:      {}", info.issuer_text());
    println!("Serial Number:    {}", info.serial_hex());
    println!("Digest Algorithm: {}", info.digest);
    println!("Signature:        {} bytes", info.signature.len());
    println!("Filename:         {}", info.filename_text());
    println!("Timestamp:        {}", time_text(info.timestamp));
}

fn record_json(i: usize, r: &Record) -> Value {
    let cert = r.cert();
    let (key, sha1, validity, cert_error) = match &cert {
        Some(Ok(c)) => (
            c.public_key.describe(),
            Some(hex(&c.sha1())),
            Some((c.not_before, c.not_after)),
            None,
        ),
        Some(Err(e)) => (String::new(), None, None, Some(e.to_string())),
        None => (
            r.public_key()
                .map(|k| {
                    PublicKey::from_rsa_der(k)
                        .map(|k| k.describe())
                        .unwrap_or_else(|_| "unreadable".into())
                })
                .unwrap_or_default(),
            None,
            None,
            None,
        ),
    };
    json!({
        "index": i,
        "role": r.role().map(|r| r.to_string()),
        "role_code": r.role().map(|r| r.0),
        "subject": r.subject_text(),
        "issuer": r.issuer_text(),
        "serial": r.serial_hex(),
        "dns_name": r.dns_name().map(itlsim_wire::header::display_string),
        "ip": r.ip_address().map(|ip| ip.iter().map(u8::to_string).collect::<Vec<_>>().join(".")),
        "key": key,
        "certificate_sha1": sha1,
        "validity": validity,
        "certificate_error": cert_error,
        "blank": r.is_blank(),
        "unknown_tags": r.fields().filter(|(tag, _)| *tag > 12).map(|(tag, _)| tag).collect::<Vec<_>>(),
    })
}

pub fn itl(cmd: ItlCmd) -> Result<ExitCode> {
    match cmd {
        ItlCmd::Show { file, json } => itl_show(&file, json),
        ItlCmd::Build(args) => itl_build(args),
    }
}

fn itl_show(path: &Path, as_json: bool) -> Result<ExitCode> {
    let bytes = read(path)?;
    let tl = TrustList::decode(&bytes).map_err(|e| malformed(path, e))?;
    let verdict = tl.verify_self();
    let (status, signer_index) = match &verdict {
        Ok(s) => ("valid".to_string(), Some(s.index)),
        Err(e) => (format!("INVALID: {e}"), None),
    };
    let mut findings = Vec::new();
    if tl.over_phone_limit() {
        findings.push(format!(
            "ITL_OVER_PHONE_LIMIT: {} bytes > 65536; phones refuse it (E10)",
            bytes.len()
        ));
    }
    if tl.is_empty_itl() {
        findings.push("EMPTY_ITL: no usable TFTP/CCM/TVS record (rollback ITL, E5)".into());
    }
    let sasts = tl.with_role(Role::SAST).count();
    if sasts > 2 {
        findings.push(format!("MORE_THAN_2_SAST: {sasts} SAST records"));
    }
    // bad-inputs T16: an RSA-1024 signer verifies but is weak.
    if let Some(Ok(c)) = signer_index
        .and_then(|i| tl.records().get(i))
        .and_then(|r| r.cert())
        && let PublicKey::Rsa { bits, .. } = &c.public_key
        && *bits < 2048
    {
        findings.push(format!("WEAK_KEY: signer key RSA {bits} (< 2048)"));
    }
    // bad-inputs T15: RFC 5280 serials are at most 20 octets.
    let long_serial = |s: &[u8]| s.len() > 20;
    if long_serial(&tl.info().serial) {
        findings.push(format!(
            "SERIAL_TOO_LONG: header signer serial of {} bytes (RFC 5280: at most 20)",
            tl.info().serial.len()
        ));
    }
    for (i, r) in tl.records().iter().enumerate() {
        if let Some(sr) = r.serial().filter(|s| long_serial(s)) {
            findings.push(format!(
                "SERIAL_TOO_LONG: record {} serial of {} bytes (RFC 5280: at most 20)",
                i + 1,
                sr.len()
            ));
        }
    }
    // bad-inputs T20: a CTL served as an ITL (or the reverse).
    if let Some(m) = list_kind_mismatch(&file_name(path), &tl.info().filename_text()) {
        findings.push(m);
    }
    if as_json {
        let v = json!({
            "file": path.display().to_string(),
            "size": bytes.len(),
            "header": header_json(tl.info()),
            "signature": { "status": if verdict.is_ok() { "valid" } else { "invalid" }, "detail": status, "signer_record": signer_index },
            "records": tl.records().iter().enumerate().map(|(i, r)| record_json(i, r)).collect::<Vec<_>>(),
            "findings": findings,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_header(tl.info(), bytes.len());
        println!("Signature Status: {status}");
        for (i, r) in tl.records().iter().enumerate() {
            let v = record_json(i, r);
            println!();
            println!(
                "Record {:<3}        {} bytes{}",
                i + 1,
                r.encoded_len(),
                if Some(i) == signer_index {
                    "  (signer)"
                } else {
                    ""
                }
            );
            println!("  Role:           {}", v["role"].as_str().unwrap_or("-"));
            if let Some(d) = v["dns_name"].as_str() {
                println!("  DNS Name:       {d}");
            }
            println!("  Subject Name:   {}", r.subject_text());
            println!("  Issuer Name:    {}", r.issuer_text());
            println!("  Serial Number:  {}", r.serial_hex());
            if let Some(ip) = v["ip"].as_str() {
                println!("  IP Address:     {ip}");
            }
            println!("  Key:            {}", v["key"].as_str().unwrap_or(""));
            match (
                v["certificate_sha1"].as_str(),
                v["certificate_error"].as_str(),
            ) {
                (Some(h), _) => println!("  Certificate:    SHA-1 {h}"),
                (None, Some(e)) => println!("  Certificate:    unreadable: {e}"),
                (None, None) => println!("  Certificate:    none (blank record)"),
            }
        }
        for f in &findings {
            println!("\nFinding: {f}");
        }
    }
    Ok(if verdict.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

fn parse_signer_version(s: &str) -> Result<(u8, u8)> {
    match s {
        "1.0" => Ok((1, 0)),
        "1.1" => Ok((1, 1)),
        other => bail!("--signer-version {other}: expected 1.0 or 1.1"),
    }
}

fn itl_build(a: BuildArgs) -> Result<ExitCode> {
    if a.sast.len() > 2 {
        bail!("at most 2 SAST certificates per trust list (wire-formats §3.5)");
    }
    let layout: Layout = a.layout.into();
    let mut b = TrustListBuilder::new(layout, &a.filename, a.timestamp.unwrap_or_else(now))
        .digest(a.digest.into());
    if layout == Layout::Reference {
        b = b.signer_version(Some(parse_signer_version(&a.signer_version)?));
    }
    let style = RecordStyle {
        layout,
        ..RecordStyle::default()
    };
    let mut signer = None;
    for path in &a.sast {
        let (key, cert) = key_and_cert(path)?;
        b = b.record(Record::from_cert(Role::SAST, &cert, &style));
        signer.get_or_insert((key, cert));
    }
    for spec in &a.records {
        let (role, path) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--record {spec}: expected ROLE=CERT"))?;
        let role =
            Role::parse(role).ok_or_else(|| anyhow!("--record {spec}: unknown role {role}"))?;
        let cert = cert_file(Path::new(path))?;
        b = b.record(Record::from_cert(role, &cert, &style));
    }
    let (key, cert) = signer.ok_or_else(|| anyhow!("--sast is required"))?;
    let tl = b.sign(&key, &cert)?;
    write_atomic(&a.output, tl.raw())?;
    eprintln!(
        "wrote {} ({} bytes, {} records)",
        a.output.display(),
        tl.raw().len(),
        tl.records().len()
    );
    Ok(ExitCode::SUCCESS)
}

enum AnySigned {
    Plain(SignedFile),
    Encrypted(EncryptedFile),
}

impl AnySigned {
    fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let env = Envelope::decode(bytes).map_err(|e| malformed(path, e))?;
        Ok(if env.info().version.0 == 2 {
            AnySigned::Encrypted(EncryptedFile::decode(bytes).map_err(|e| malformed(path, e))?)
        } else {
            AnySigned::Plain(SignedFile::decode(bytes).map_err(|e| malformed(path, e))?)
        })
    }

    fn envelope(&self) -> &Envelope {
        match self {
            AnySigned::Plain(f) => f.envelope(),
            AnySigned::Encrypted(f) => f.envelope(),
        }
    }
}

/// The signer's key from --cert, or from the TFTP / CCM+TFTP record of --itl with the same serial.
fn signer_key(args: &CheckArgs, info: &HeaderInfo) -> Result<Option<(PublicKey, String)>> {
    if let Some(c) = &args.cert {
        let cert = cert_file(c)?;
        return Ok(Some((
            cert.public_key.clone(),
            format!("certificate {}", c.display()),
        )));
    }
    if let Some(p) = &args.itl {
        let bytes = read(p)?;
        let tl = TrustList::decode(&bytes).map_err(|e| malformed(p, e))?;
        let found = tl.records().iter().enumerate().find(|(_, r)| {
            r.role().is_some_and(Role::signs_configs) && r.serial() == Some(info.serial.as_slice())
        });
        return match found {
            Some((i, r)) => {
                let key = r
                    .verifying_key()
                    .map_err(|e| anyhow!("{}: record {}: {e}", p.display(), i + 1))?;
                Ok(Some((
                    key,
                    format!(
                        "{} record {} ({})",
                        p.display(),
                        i + 1,
                        r.role().map(|r| r.to_string()).unwrap_or_default()
                    ),
                )))
            }
            None => Ok(None),
        };
    }
    Ok(None)
}

/// `ITL`/`CTL` in the name on disk vs in the header FILENAME (bad-inputs T20).
fn list_kind_mismatch(disk: &str, header: &str) -> Option<String> {
    let kind = |n: &str| {
        let u = n.to_ascii_uppercase();
        match (u.contains("ITL"), u.contains("CTL")) {
            (true, false) => Some("ITL"),
            (false, true) => Some("CTL"),
            _ => None,
        }
    };
    match (kind(disk), kind(header)) {
        (Some(a), Some(b)) if a != b => Some(format!(
            "FILENAME_MISMATCH: file {disk:?} holds a {b} (header filename {header:?})"
        )),
        _ => None,
    }
}

/// The `SEP<12 hex>` device name in a file name, upper-cased.
fn device_of(name: &str) -> Option<String> {
    let u = name.to_ascii_uppercase();
    let i = u.find("SEP")?;
    let hex: String = u[i + 3..].chars().take(12).collect();
    (hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("SEP{hex}"))
}

/// A signed config whose header FILENAME names another device than the file it was served as
/// (bad-inputs §2.2 CONFIG_SUBSTITUTION: a trust failure, not a warning).
fn config_substitution(disk: &str, header: &str) -> Option<String> {
    match (device_of(disk), device_of(header)) {
        (Some(a), Some(b)) if a != b => Some(format!(
            "CONFIG_SUBSTITUTION: {disk:?} carries the signed config of {b} (header filename {header:?})"
        )),
        _ => None,
    }
}

fn sgn_check(args: CheckArgs, require_key: bool) -> Result<ExitCode> {
    let bytes = read(&args.file)?;
    let file = AnySigned::decode(&args.file, &bytes)?;
    let info = file.envelope().info().clone();
    let key = signer_key(&args, &info)?;
    if require_key && key.is_none() && args.cert.is_none() && args.itl.is_none() {
        bail!("verify needs --cert CERT or --itl ITLFile.tlv");
    }
    let verdict: Option<Result<(), VerifyError>> = match (&key, args.itl.is_some()) {
        (Some((k, _)), _) => Some(file.envelope().verify_with(k)),
        (None, true) => Some(Err(VerifyError::MissingSigner {
            serial: info.serial_hex(),
        })),
        (None, false) => None,
    };
    let substitution = config_substitution(&file_name(&args.file), &info.filename_text());
    let status = match &verdict {
        Some(Ok(())) if substitution.is_some() => {
            "INVALID: the signature is valid but the file is another device's (CONFIG_SUBSTITUTION)"
                .to_string()
        }
        None => "not checked (give --cert or --itl)".to_string(),
        Some(Ok(())) => format!(
            "valid (key from {})",
            key.as_ref().map(|k| k.1.as_str()).unwrap_or("")
        ),
        Some(Err(e)) => format!("INVALID: {e}"),
    };
    let enc = match &file {
        AnySigned::Encrypted(f) => Some(f.encryption().clone()),
        AnySigned::Plain(_) => None,
    };
    if args.json {
        let mut v = json!({
            "file": args.file.display().to_string(),
            "size": bytes.len(),
            "header": header_json(&info),
            "payload_bytes": file.envelope().body().len(),
            "signature": { "status": match &verdict { None => "unchecked", Some(Ok(())) if substitution.is_none() => "valid", Some(_) => "invalid" }, "detail": status },
            "findings": substitution.iter().collect::<Vec<_>>(),
        });
        if let Some(e) = &enc {
            v["encryption"] = json!({ "iv": hex(&e.iv), "padding_count": e.padding_count, "key_size": e.key_size, "plaintext_digest": e.plaintext_digest.to_string(), "plaintext_hash": hex(&e.plaintext_hash) });
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_header(&info, bytes.len());
        println!("Payload:          {} bytes", file.envelope().body().len());
        if let Some(e) = &enc {
            println!(
                "Encryption:       AES-128-CBC, IV {}, {} pad bytes, wrapped key {} bits",
                hex(&e.iv),
                e.padding_count,
                e.key_size
            );
            println!(
                "Plaintext Hash:   {} {}",
                e.plaintext_digest,
                hex(&e.plaintext_hash)
            );
        }
        println!("Signature Status: {status}");
        if let Some(f) = &substitution {
            println!("\nFinding: {f}");
        }
    }
    Ok(match verdict {
        Some(Err(_)) => ExitCode::from(EXIT_INVALID),
        Some(Ok(())) if substitution.is_some() => ExitCode::from(EXIT_INVALID),
        _ => ExitCode::SUCCESS,
    })
}

fn default_output(file: &Path, suffix: &str) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn sgn(cmd: SgnCmd) -> Result<ExitCode> {
    match cmd {
        SgnCmd::Show(a) => sgn_check(a, false),
        SgnCmd::Verify(a) => sgn_check(a, true),
        SgnCmd::Sign(a) => {
            let (k, cert, payload, out, name, timestamp) = a.resolve(".sgn")?;
            let opts = SignOptions {
                filename: &name,
                digest: a.digest.into(),
                timestamp,
                layout: Layout::Reference,
            };
            let signed = itlsim_wire::sgn::sign(&payload, &opts, &k, &cert)?;
            write_atomic(&out, signed.envelope().raw())?;
            eprintln!(
                "wrote {} ({} bytes)",
                out.display(),
                signed.envelope().raw().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        SgnCmd::Encrypt { device, sign: a } => {
            let (k, cert, xml, out, name, timestamp) = a.resolve(".enc.sgn")?;
            let phone = cert_file(&device)?;
            // The CLI is where randomness may come from: the OS, for the AES key and IV.
            let mut rng = rand_os();
            let mut aes_key = [0u8; 16];
            let mut iv = [0u8; 16];
            itlsim_wire::crypto::rand_core::RngCore::fill_bytes(&mut rng, &mut aes_key);
            itlsim_wire::crypto::rand_core::RngCore::fill_bytes(&mut rng, &mut iv);
            let d: Digest = a.digest.into();
            let opts = EncryptOptions {
                filename: &name,
                digest: d,
                plaintext_digest: d,
                timestamp,
                layout: Layout::Reference,
                aes_key,
                iv,
            };
            let f = itlsim_wire::enc::encrypt(&xml, &phone, &opts, &k, &cert, &mut rng)?;
            write_atomic(&out, f.envelope().raw())?;
            eprintln!(
                "wrote {} ({} bytes)",
                out.display(),
                f.envelope().raw().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        SgnCmd::Decrypt {
            device_key,
            output,
            file,
        } => {
            let b = load_pem(&device_key)?;
            let k = b
                .key
                .ok_or_else(|| anyhow!("{}: no RSA private key", device_key.display()))?;
            let bytes = read(&file)?;
            let f = EncryptedFile::decode(&bytes).map_err(|e| malformed(&file, e))?;
            let pt = f
                .decrypt(&k)
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            match output {
                Some(o) => write_atomic(&o, &pt)?,
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&pt)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn rand_os() -> impl itlsim_wire::crypto::rand_core::CryptoRngCore {
    itlsim_wire::crypto::rand_core::OsRng
}

pub fn tvs(cmd: TvsCmd) -> Result<ExitCode> {
    let TvsCmd::Decode {
        file,
        json: as_json,
    } = cmd;
    let bytes = read(&file)?;
    let m = Message::decode(&bytes, 65_535).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let is_request = matches!(
        m.command,
        TvsCommand::VERIFY_REQUEST | TvsCommand::QUERY_REQUEST
    );
    let typed: Value = if is_request {
        match m.request() {
            Ok(itlsim_wire::tvs::Request::Verify {
                device_name,
                certificate,
            }) => {
                let c = CertInfo::parse(&certificate).ok();
                json!({ "device_name": device_name, "certificate_bytes": certificate.len(),
                        "certificate_subject": c.as_ref().map(|c| c.subject_dn(itlsim_wire::cert::DnStyle::Reference)),
                        "certificate_serial": c.as_ref().map(|c| hex(&c.serial)),
                        "certificate_sha256": c.as_ref().map(|c| hex(&c.sha256())) })
            }
            Ok(itlsim_wire::tvs::Request::Query {
                device_name,
                subject,
                issuer,
                serial,
            }) => json!({
                "device_name": device_name,
                "subject": itlsim_wire::header::display_string(&subject),
                "issuer": issuer.as_deref().map(itlsim_wire::header::display_string),
                "serial": serial.as_deref().map(hex),
            }),
            Err(e) => json!({ "error": e.to_string() }),
        }
    } else {
        match m.response() {
            Ok(r) => json!({
                "status": format!("{:?}", r.status).to_lowercase(),
                "roles": r.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                "ttl": r.ttl,
                "certificate_bytes": r.certificate.as_ref().map(Vec::len),
            }),
            Err(e) => json!({ "error": e.to_string() }),
        }
    };
    let v = json!({
        "file": file.display().to_string(),
        "command": m.command.0,
        "command_name": m.command.name(),
        "reserved": m.reserved,
        "session_id": m.session_id,
        "elements": m.elements.iter().map(|e| json!({"tag": e.tag, "len": e.value.len()})).collect::<Vec<_>>(),
        "decoded": typed,
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("Command:    {} ({})", m.command.0, m.command.name());
        println!("Session Id: {}", m.session_id);
        println!("Reserved:   {}", m.reserved);
        for e in &m.elements {
            println!("Element:    tag {} length {}", e.tag, e.value.len());
        }
        if let Value::Object(map) = &v["decoded"] {
            for (k, val) in map {
                println!(
                    "{k}: {}",
                    if let Value::String(s) = val {
                        s.clone()
                    } else {
                        val.to_string()
                    }
                );
            }
        }
    }
    let bad = v["decoded"].get("error").is_some();
    Ok(if bad {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    })
}
