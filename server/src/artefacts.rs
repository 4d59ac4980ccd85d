//! What each TFTP node serves, as bytes.
//!
//! * `ITLFile.tlv` and `ITLSEP<MAC>.tlv` (same bytes: the signed name is the generic one,
//!   wire-formats §3.7), from [`Cluster::itl_plan`]: rebuilt whenever the plan changes, with the
//!   time of that change as TIMESTAMP, so equal content ⇒ equal bytes (seed 004: the checksum
//!   changes only when the content changes).
//! * `CTLFile.tlv` / `CTLSEP<MAC>.tlv` from the stored CTL (mixed mode, or the CAPF-only CTL after
//!   `set-cluster non-secure`; §1.3, §6.4).
//! * `SEP<MAC>.cnf.xml.sgn` signed by the serving node's CallManager key (§1.4, wire §4) with the
//!   TFTP File Signature Algorithm digest, `.enc.sgn` for phones with TFTP Encrypted Config (§1.4,
//!   wire §5), plain `SEP<MAC>.cnf.xml` and `XMLDefault.cnf.xml` (unsigned default config for
//!   phones without Security by Default, seed 004 "Autoregistration"), `XMLDefault.cnf.xml.sgn`.
//!
//! Per-phone files are built on first request and cached by the hash of their inputs: a cluster
//! of 100k phones signs nothing up front.

use std::collections::HashMap;
use std::sync::Arc;

use itlsim_wire::cert::CertInfo;
use itlsim_wire::crypto::SigningKey;
use itlsim_wire::header::Layout;
use itlsim_wire::tags::Digest;
use itlsim_wire::tlv::{Record, RecordStyle, TrustListBuilder};
use itlsim_wire::{enc, sgn};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest as _, Sha256};

use crate::cluster::{Cluster, ListKind, TrustListPlan};
use crate::error::ModelError;
use crate::keys::PrivateKey;
use crate::model::{FileDigest, Mac, NodeId, PhoneRecord, SecurityMode, Service};
use crate::pki::{CertPurpose, Certificate, UnixTime};

/// A file as TFTP/HTTP 6970 serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// Bytes.
    pub bytes: Arc<[u8]>,
    /// TIMESTAMP in the signed header (None for unsigned files).
    pub timestamp: Option<u32>,
}

/// Why a file is not served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TftpMiss {
    /// The TFTP service is not running on this node (no answer at all).
    #[error("TFTP service not running on {0}")]
    ServiceDown(NodeId),
    /// TFTP "file not found" (§10.1: optional files, e.g. no CTL in non-secure mode).
    #[error("file not found: {0}")]
    NotFound(String),
    /// Building failed (a model bug or an impossible key); reported, never a panic.
    #[error("build failed: {0}")]
    Build(String),
}

/// Which file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `ITLFile.tlv`.
    ItlFile,
    /// `ITLSEP<MAC>.tlv`.
    ItlSep(Mac),
    /// `CTLFile.tlv`.
    CtlFile,
    /// `CTLSEP<MAC>.tlv`.
    CtlSep(Mac),
    /// `SEP<MAC>.cnf.xml`.
    Config(Mac),
    /// `SEP<MAC>.cnf.xml.sgn`.
    ConfigSgn(Mac),
    /// `SEP<MAC>.cnf.xml.enc.sgn`.
    ConfigEncSgn(Mac),
    /// `XMLDefault.cnf.xml`.
    DefaultConfig,
    /// `XMLDefault.cnf.xml.sgn`.
    DefaultConfigSgn,
}

impl FileKind {
    /// Parses a requested file name (case-insensitive; leading `/` ignored).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim_start_matches('/');
        let lower = name.to_ascii_lowercase();
        let mac_between = |prefix: &str, suffix: &str| -> Option<Mac> {
            let rest = lower.strip_prefix(prefix)?.strip_suffix(suffix)?;
            if rest.len() != 12 {
                return None;
            }
            Mac::parse(rest)
        };
        Some(match lower.as_str() {
            "itlfile.tlv" => FileKind::ItlFile,
            "ctlfile.tlv" => FileKind::CtlFile,
            "xmldefault.cnf.xml" => FileKind::DefaultConfig,
            "xmldefault.cnf.xml.sgn" => FileKind::DefaultConfigSgn,
            _ => {
                if let Some(m) = mac_between("itlsep", ".tlv") {
                    FileKind::ItlSep(m)
                } else if let Some(m) = mac_between("ctlsep", ".tlv") {
                    FileKind::CtlSep(m)
                } else if let Some(m) = mac_between("sep", ".cnf.xml.enc.sgn") {
                    FileKind::ConfigEncSgn(m)
                } else if let Some(m) = mac_between("sep", ".cnf.xml.sgn") {
                    FileKind::ConfigSgn(m)
                } else if let Some(m) = mac_between("sep", ".cnf.xml") {
                    FileKind::Config(m)
                } else {
                    return None;
                }
            }
        })
    }

    /// The served file name.
    pub fn name(self) -> String {
        match self {
            FileKind::ItlFile => "ITLFile.tlv".into(),
            FileKind::ItlSep(m) => format!("ITLSEP{m}.tlv"),
            FileKind::CtlFile => "CTLFile.tlv".into(),
            FileKind::CtlSep(m) => format!("CTLSEP{m}.tlv"),
            FileKind::Config(m) => format!("SEP{m}.cnf.xml"),
            FileKind::ConfigSgn(m) => format!("SEP{m}.cnf.xml.sgn"),
            FileKind::ConfigEncSgn(m) => format!("SEP{m}.cnf.xml.enc.sgn"),
            FileKind::DefaultConfig => "XMLDefault.cnf.xml".into(),
            FileKind::DefaultConfigSgn => "XMLDefault.cnf.xml.sgn".into(),
        }
    }
}

/// Counters of the artefact cache (benchmark, tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Files built (signed).
    pub built: u64,
    /// Requests answered from the cache.
    pub hits: u64,
    /// Bytes held by cached files.
    pub bytes: u64,
    /// Cached per-file entries.
    pub entries: u64,
}

/// (hash of the inputs, bytes) of one cached per-node file.
type CachedFile = ([u8; 32], Arc<[u8]>);

/// Per-phone files kept at most per cluster (first in, first out). A cached file only saves a
/// signature when the same phone asks again with unchanged inputs; the bound keeps memory flat in
/// fleets of any size (≈ 2 KB per entry) [I: a simulator choice, CUCM keeps its files on disk].
pub const MAX_CACHED_FILES: usize = 16_384;

/// Built files, keyed by what they were built from.
#[derive(Debug, Default)]
pub struct ArtefactCache {
    /// Trust lists by (plan hash, timestamp).
    lists: HashMap<([u8; 32], u32), Arc<[u8]>>,
    /// Per-node per-file: (input hash, bytes).
    files: HashMap<(NodeId, FileKind), CachedFile>,
    /// Insertion order of `files`, for the FIFO bound.
    order: std::collections::VecDeque<(NodeId, FileKind)>,
    /// The bound (`MAX_CACHED_FILES` unless set; 0 = the default).
    max_files: usize,
    /// Signing keys in codec form, by certificate fingerprint.
    signers: HashMap<[u8; 32], Arc<(SigningKey, CertInfo)>>,
    stats: CacheStats,
}

fn wire_digest(d: FileDigest) -> Digest {
    match d {
        FileDigest::Sha1 => Digest::Sha1,
        FileDigest::Sha512 => Digest::Sha512,
    }
}

fn ts(t: UnixTime) -> u32 {
    u32::try_from(t.max(0)).unwrap_or(u32::MAX)
}

fn wire_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Wire(e.to_string())
}

impl ArtefactCache {
    fn signer(
        &mut self,
        cert: &Certificate,
        key: &PrivateKey,
    ) -> Result<Arc<(SigningKey, CertInfo)>, ModelError> {
        if let Some(s) = self.signers.get(&cert.fingerprint()) {
            return Ok(s.clone());
        }
        let rsa = key.rsa().ok_or_else(|| {
            ModelError::Wire("signing key must be RSA (wire-formats §3.5)".into())
        })?;
        let sk = SigningKey::from_rsa(rsa.clone()).map_err(wire_err)?;
        let info = CertInfo::parse(cert.der()).map_err(wire_err)?;
        let entry = Arc::new((sk, info));
        self.signers.insert(cert.fingerprint(), entry.clone());
        Ok(entry)
    }

    /// Statistics.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

/// Builds the bytes of a trust list plan (uncached).
pub fn build_trust_list(
    plan: &TrustListPlan,
    timestamp: UnixTime,
    cucm_layout: bool,
) -> Result<Vec<u8>, ModelError> {
    let layout = if cucm_layout {
        Layout::Cucm
    } else {
        Layout::Reference
    };
    let filename = match plan.kind {
        ListKind::Itl => "ITLFile.tlv",
        ListKind::Ctl => "CTLFile.tlv",
    };
    let mut b =
        TrustListBuilder::new(layout, filename, ts(timestamp)).digest(wire_digest(plan.digest));
    if let Some(v) = plan.signer_version {
        b = b.signer_version(Some(v));
    }
    for r in &plan.records {
        let info = CertInfo::parse(r.cert.der()).map_err(wire_err)?;
        let style = RecordStyle {
            layout,
            omit_signature: false,
            dns_name: Some(r.dns.clone()),
            ip: r.ip,
        };
        b = b.record(Record::from_cert(r.role.wire(), &info, &style));
    }
    let rsa = plan
        .signer_key
        .rsa()
        .ok_or_else(|| ModelError::Wire("signing key must be RSA (wire-formats §3.5)".into()))?;
    let key = SigningKey::from_rsa(rsa.clone()).map_err(wire_err)?;
    let signer = CertInfo::parse(plan.signer.der()).map_err(wire_err)?;
    let list = b.sign(&key, &signer).map_err(wire_err)?;
    Ok(list.raw().to_vec())
}

impl Cluster {
    fn layout(&self) -> Layout {
        if self.knobs.cucm_layout {
            Layout::Cucm
        } else {
            Layout::Reference
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ArtefactCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cache statistics.
    pub fn cache_stats(&self) -> CacheStats {
        self.lock_cache().stats
    }

    /// Sets how many per-phone files the cache keeps (default [`MAX_CACHED_FILES`]).
    pub fn set_file_cache_bound(&self, n: usize) {
        self.lock_cache().max_files = n.max(1);
    }

    /// Drops every cached file (memory measurements).
    pub fn clear_cache(&self) {
        let mut c = self.lock_cache();
        c.lists.clear();
        c.files.clear();
        c.order.clear();
        c.stats.bytes = 0;
        c.stats.entries = 0;
    }

    fn list_bytes(&self, plan: &TrustListPlan, timestamp: UnixTime) -> Result<Served, TftpMiss> {
        let key = (plan.content_hash(), ts(timestamp));
        {
            let mut c = self.lock_cache();
            if let Some(b) = c.lists.get(&key).cloned() {
                c.stats.hits += 1;
                return Ok(Served {
                    bytes: b,
                    timestamp: Some(key.1),
                });
            }
        }
        let bytes: Arc<[u8]> = build_trust_list(plan, timestamp, self.knobs.cucm_layout)
            .map_err(|e| TftpMiss::Build(e.to_string()))?
            .into();
        let mut c = self.lock_cache();
        c.stats.built += 1;
        c.stats.bytes += bytes.len() as u64;
        c.lists.insert(key, bytes.clone());
        Ok(Served {
            bytes,
            timestamp: Some(key.1),
        })
    }

    /// The ITL TFTP on `node` serves now.
    pub fn itl_bytes(&self, node: NodeId) -> Result<Served, TftpMiss> {
        let plan = self
            .itl_plan(node)
            .ok_or_else(|| TftpMiss::NotFound("ITLFile.tlv".into()))?;
        let at = self.itl_changed_at(node).unwrap_or(self.now);
        self.list_bytes(&plan, at)
    }

    /// The stored CTL.
    pub fn ctl_bytes(&self) -> Result<Served, TftpMiss> {
        let ctl = self
            .ctl
            .as_ref()
            .ok_or_else(|| TftpMiss::NotFound("CTLFile.tlv".into()))?;
        self.list_bytes(&ctl.plan, ctl.built_at)
    }

    /// Answers a TFTP / HTTP 6970 request for `name` on `node`.
    pub fn tftp_get(&self, node: NodeId, name: &str) -> Result<Served, TftpMiss> {
        let n = self
            .node(node)
            .map_err(|e| TftpMiss::NotFound(e.to_string()))?;
        if !n.runs(Service::Tftp) {
            return Err(TftpMiss::ServiceDown(node));
        }
        let kind = FileKind::parse(name).ok_or_else(|| TftpMiss::NotFound(name.to_string()))?;
        let phone = |m: Mac| {
            self.phones
                .get(&m)
                .ok_or_else(|| TftpMiss::NotFound(name.to_string()))
        };
        match kind {
            FileKind::ItlFile => self.itl_bytes(node),
            FileKind::ItlSep(m) => {
                phone(m)?;
                self.itl_bytes(node)
            }
            FileKind::CtlFile => self.ctl_bytes(),
            FileKind::CtlSep(m) => {
                phone(m)?;
                self.ctl_bytes()
            }
            FileKind::Config(m) => {
                let p = phone(m)?;
                let xml = self.config_xml(Some(p));
                Ok(Served {
                    bytes: xml.into_bytes().into(),
                    timestamp: None,
                })
            }
            FileKind::DefaultConfig => Ok(Served {
                bytes: self.config_xml(None).into_bytes().into(),
                timestamp: None,
            }),
            FileKind::ConfigSgn(m) => {
                let p = phone(m)?;
                if !p.sbd || !self.version.has_sbd() {
                    return Err(TftpMiss::NotFound(name.to_string()));
                }
                self.signed_config(node, kind, Some(p))
            }
            FileKind::DefaultConfigSgn => {
                if !self.version.has_sbd() {
                    return Err(TftpMiss::NotFound(name.to_string()));
                }
                self.signed_config(node, kind, None)
            }
            FileKind::ConfigEncSgn(m) => {
                let p = phone(m)?;
                if !p.encrypted_config || p.device_cert_der.is_none() || !self.version.has_sbd() {
                    return Err(TftpMiss::NotFound(name.to_string()));
                }
                self.signed_config(node, kind, Some(p))
            }
        }
    }

    fn signed_config(
        &self,
        node: NodeId,
        kind: FileKind,
        phone: Option<&PhoneRecord>,
    ) -> Result<Served, TftpMiss> {
        let id = self
            .identity(node, CertPurpose::CallManager)
            .ok_or_else(|| TftpMiss::Build("no CallManager certificate".into()))?;
        let xml = self.config_xml(phone);
        let timestamp = ts(self
            .config_changed_at
            .max(self.itl_changed_at(node).unwrap_or(0)));
        let digest = self.params.tftp_file_signature;
        let mut h = Sha256::new();
        h.update(xml.as_bytes());
        h.update(id.cert.fingerprint());
        h.update([digest as u8, u8::from(self.knobs.cucm_layout)]);
        h.update(timestamp.to_be_bytes());
        if let Some(d) = phone.and_then(|p| p.device_cert_der.as_ref()) {
            h.update(d);
        }
        let input: [u8; 32] = h.finalize().into();
        {
            let mut c = self.lock_cache();
            if let Some((hash, bytes)) = c.files.get(&(node, kind))
                && *hash == input
            {
                let bytes = bytes.clone();
                c.stats.hits += 1;
                return Ok(Served {
                    bytes,
                    timestamp: Some(timestamp),
                });
            }
        }
        let signer = self
            .lock_cache()
            .signer(&id.cert, &id.key)
            .map_err(|e| TftpMiss::Build(e.to_string()))?;
        let (key, info) = (&signer.0, &signer.1);
        let filename = kind.name();
        let bytes: Vec<u8> = match kind {
            FileKind::ConfigEncSgn(_) => {
                let der = phone
                    .and_then(|p| p.device_cert_der.as_ref())
                    .ok_or_else(|| TftpMiss::NotFound(filename.clone()))?;
                let phone_cert =
                    CertInfo::parse(der).map_err(|e| TftpMiss::Build(e.to_string()))?;
                // AES key, IV and wrap padding from a generator seeded by the inputs: same inputs,
                // same bytes.
                let mut rng = ChaCha20Rng::from_seed(input);
                let mut aes_key = [0u8; 16];
                let mut iv = [0u8; 16];
                rand::RngCore::fill_bytes(&mut rng, &mut aes_key);
                rand::RngCore::fill_bytes(&mut rng, &mut iv);
                let opts = enc::EncryptOptions {
                    filename: &filename,
                    digest: wire_digest(digest),
                    plaintext_digest: wire_digest(digest),
                    timestamp,
                    layout: self.layout(),
                    aes_key,
                    iv,
                };
                enc::encrypt(xml.as_bytes(), &phone_cert, &opts, key, info, &mut rng)
                    .map_err(|e| TftpMiss::Build(e.to_string()))?
                    .encode()
            }
            _ => {
                let opts = sgn::SignOptions {
                    filename: &filename,
                    digest: wire_digest(digest),
                    timestamp,
                    layout: self.layout(),
                };
                sgn::sign(xml.as_bytes(), &opts, key, info)
                    .map_err(|e| TftpMiss::Build(e.to_string()))?
                    .encode()
            }
        };
        let bytes: Arc<[u8]> = bytes.into();
        let mut c = self.lock_cache();
        c.stats.built += 1;
        let old = c.files.insert((node, kind), (input, bytes.clone()));
        match old {
            Some((_, b)) => c.stats.bytes = c.stats.bytes.saturating_sub(b.len() as u64),
            None => {
                c.stats.entries += 1;
                c.order.push_back((node, kind));
                let max = if c.max_files == 0 {
                    MAX_CACHED_FILES
                } else {
                    c.max_files
                };
                while c.order.len() > max {
                    if let Some(k) = c.order.pop_front()
                        && let Some((_, b)) = c.files.remove(&k)
                    {
                        c.stats.bytes = c.stats.bytes.saturating_sub(b.len() as u64);
                        c.stats.entries = c.stats.entries.saturating_sub(1);
                    }
                }
            }
        }
        c.stats.bytes += bytes.len() as u64;
        Ok(Served {
            bytes,
            timestamp: Some(timestamp),
        })
    }

    /// The configuration XML of a phone (or the autoregistration default), with the CallManager
    /// list and the `<TVS>` list of its CallManager group (§4.2; layout as the reference vector
    /// `vectors/src/SEP001122334455.cnf.xml`).
    pub fn config_xml(&self, phone: Option<&PhoneRecord>) -> String {
        let group = phone
            .and_then(|p| self.groups.get(usize::from(p.cm_group.0)))
            .or_else(|| self.groups.first());
        let members: Vec<&crate::cluster::Node> = group
            .map(|g| {
                g.members
                    .iter()
                    .filter_map(|m| self.nodes.get(usize::from(m.0)))
                    .collect()
            })
            .unwrap_or_default();
        let ip =
            |n: &crate::cluster::Node| format!("{}.{}.{}.{}", n.ip[0], n.ip[1], n.ip[2], n.ip[3]);
        let mut x = String::with_capacity(1400);
        x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<device>\n  <fullConfig>true</fullConfig>\n");
        x.push_str("  <deviceProtocol>SIP</deviceProtocol>\n");
        if let Some(p) = phone {
            x.push_str(&format!(
                "  <name>SEP{}</name>\n  <model>{}</model>\n",
                p.mac,
                xml_escape(&p.model)
            ));
        }
        x.push_str("  <devicePool>\n    <callManagerGroup>\n      <members>\n");
        for (i, n) in members.iter().enumerate() {
            x.push_str(&format!(
                "        <member priority=\"{i}\">\n          <callManager>\n            <ports>\n              <sipPort>5060</sipPort>\n              <securedSipPort>5061</securedSipPort>\n            </ports>\n            <processNodeName>{}</processNodeName>\n          </callManager>\n        </member>\n",
                ip(n)
            ));
        }
        x.push_str("      </members>\n    </callManagerGroup>\n  </devicePool>\n");
        if self.version.has_sbd() {
            // §4.2: the TVS list equals the CallManager group.
            x.push_str("  <TVS>\n    <members>\n");
            for (i, n) in members.iter().enumerate() {
                x.push_str(&format!(
                    "      <member priority=\"{i}\">\n        <port>2445</port>\n        <address>{}</address>\n      </member>\n",
                    ip(n)
                ));
            }
            x.push_str("    </members>\n  </TVS>\n");
        }
        x.push_str("  <ipAddressMode>0</ipAddressMode>\n");
        let load = phone.map(|p| p.load.as_str()).unwrap_or_default();
        x.push_str(&format!(
            "  <loadInformation>{}</loadInformation>\n",
            xml_escape(load)
        ));
        x.push_str("  <capfAuthMode>0</capfAuthMode>\n  <capfList>\n");
        for n in self.nodes.iter().filter(|n| n.has(Service::Capf)) {
            x.push_str(&format!(
                "    <capf>\n      <phonePort>3804</phonePort>\n      <processNodeName>{}</processNodeName>\n    </capf>\n",
                ip(n)
            ));
        }
        x.push_str("  </capfList>\n");
        // Device security mode 1 = non-secure; 3 = encrypted profile in mixed mode [I].
        let secure =
            phone.is_some_and(|p| p.encrypted_config) && self.security != SecurityMode::NonSecure;
        x.push_str(&format!(
            "  <deviceSecurityMode>{}</deviceSecurityMode>\n",
            if secure { 3 } else { 1 }
        ));
        x.push_str("</device>\n");
        x
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
