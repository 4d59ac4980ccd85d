//! rustls configuration for both sides.
//!
//! * One crypto provider, aws-lc-rs, passed explicitly to every config builder (never the
//!   process default, so a second provider elsewhere in the process cannot make rustls panic).
//! * Server: the node identity from [`TlsIdentity`]; EC or RSA chosen by the client's signature
//!   schemes. RSA keys below 2048 bits (CUCM 8.x-era certificates) cannot be loaded by aws-lc-rs,
//!   so they sign with the `rsa` crate ([`LegacyRsaKey`]).
//! * TVS asks for a client certificate but does not require one (E19); the certificate is not
//!   used for the decision (wire-formats §6.4: the device name is logged only).
//! * Client: a [`ServerCertVerifier`] that pins given certificates or accepts any and lets the
//!   caller (the phone, per the decision "TLS peer checks are decided by the phone") judge the
//!   presented one. Not webpki path validation: CUCM self-signed identities carry CA:TRUE and
//!   would be refused as end entities (stack.md).
//!
//! Limits of rustls (stack.md): TLS 1.2/1.3 only, no RSA key exchange or CBC suites, so the
//! TLS-1.0-only 79xx phones are modelled by phone-core, not served here.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, Error, ServerConfig,
    SignatureAlgorithm, SignatureScheme,
};

use crate::view::TlsIdentity;

/// The one provider (aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
}

/// Why a TLS config could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The model has no certificate for this port.
    #[error("no identity certificate for this port")]
    NoIdentity,
    /// A key could not be loaded.
    #[error("key: {0}")]
    Key(String),
    /// rustls refused the configuration.
    #[error("rustls: {0}")]
    Rustls(#[from] Error),
}

/// RSA keys aws-lc-rs refuses (< 2048 bits), signing with the `rsa` crate: PKCS#1 v1.5 for
/// TLS 1.2, PSS for TLS 1.3.
pub struct LegacyRsaKey {
    key: Arc<rsa::RsaPrivateKey>,
}

impl fmt::Debug for LegacyRsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LegacyRsaKey")
    }
}

const LEGACY_SCHEMES: [SignatureScheme; 6] = [
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

/// The RSA signature schemes, for a client that wants to be given a server's RSA identity (6971
/// presents CallManager-ECDSA to clients that offer ECDSA).
pub fn rsa_schemes() -> Vec<SignatureScheme> {
    LEGACY_SCHEMES.to_vec()
}

impl SigningKey for LegacyRsaKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = LEGACY_SCHEMES.into_iter().find(|s| offered.contains(s))?;
        Some(Box::new(LegacyRsaSigner {
            key: self.key.clone(),
            scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

struct LegacyRsaSigner {
    key: Arc<rsa::RsaPrivateKey>,
    scheme: SignatureScheme,
}

impl fmt::Debug for LegacyRsaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyRsaSigner({:?})", self.scheme)
    }
}

impl Signer for LegacyRsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        use rsa::{Pkcs1v15Sign, Pss};
        use sha2::{Digest, Sha256, Sha384, Sha512};
        let mut rng = rand::rngs::OsRng;
        let r = match self.scheme {
            SignatureScheme::RSA_PSS_SHA256 => {
                self.key
                    .sign_with_rng(&mut rng, Pss::new::<Sha256>(), &Sha256::digest(message))
            }
            SignatureScheme::RSA_PSS_SHA384 => {
                self.key
                    .sign_with_rng(&mut rng, Pss::new::<Sha384>(), &Sha384::digest(message))
            }
            SignatureScheme::RSA_PSS_SHA512 => {
                self.key
                    .sign_with_rng(&mut rng, Pss::new::<Sha512>(), &Sha512::digest(message))
            }
            SignatureScheme::RSA_PKCS1_SHA256 => self
                .key
                .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message)),
            SignatureScheme::RSA_PKCS1_SHA384 => self
                .key
                .sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(message)),
            _ => self
                .key
                .sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(message)),
        };
        r.map_err(|e| Error::General(format!("legacy RSA signing: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

fn load_key(pkcs8: &[u8]) -> Result<Arc<dyn SigningKey>, TlsSetupError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec()));
    match provider().key_provider.load_private_key(der) {
        Ok(k) => Ok(k),
        Err(first) => {
            use rsa::pkcs8::DecodePrivateKey;
            let key = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8)
                .map_err(|_| TlsSetupError::Key(first.to_string()))?;
            Ok(Arc::new(LegacyRsaKey { key: Arc::new(key) }))
        }
    }
}

/// Picks the first candidate whose key type the client offered a scheme for.
#[derive(Debug)]
struct NodeResolver {
    /// (is EC, certified key), in preference order.
    keys: Vec<(bool, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for NodeResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offered = hello.signature_schemes();
        let wants_ec = offered.iter().any(|s| {
            matches!(
                s,
                SignatureScheme::ECDSA_NISTP256_SHA256 | SignatureScheme::ECDSA_NISTP384_SHA384
            )
        });
        self.keys
            .iter()
            .find(|(ec, _)| !*ec || wants_ec)
            .or_else(|| self.keys.first())
            .map(|(_, k)| k.clone())
    }
}

/// Offers client authentication, accepts any client certificate whose handshake signature
/// checks out, and also accepts none (E19).
#[derive(Debug)]
struct OptionalClientCert {
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        // E19: the LSC/MIC is asked for, not required, and not used for the answer.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Which clients' certificates a server asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// Ask, do not require (TVS, E19).
    Optional,
    /// Do not ask (HTTPS 6971/6972).
    None,
}

/// A server config presenting `identity`.
pub fn server_config(
    identity: &TlsIdentity,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let mut keys = Vec::new();
    for c in &identity.certs {
        let key = load_key(&c.key_pkcs8)?;
        let ck = CertifiedKey::new(vec![CertificateDer::from(c.cert_der.clone())], key);
        keys.push((c.ec, Arc::new(ck)));
    }
    if keys.is_empty() {
        return Err(TlsSetupError::NoIdentity);
    }
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_auth {
        ClientAuth::Optional => {
            builder.with_client_cert_verifier(Arc::new(OptionalClientCert { algs: algorithms() }))
        }
        ClientAuth::None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(NodeResolver { keys }));
    // Phones log "caching disabled, session not saved" (phone-behaviour §4.3): no tickets.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(Arc::new(cfg))
}

/// What a client accepts as server certificate.
#[derive(Clone, Debug)]
pub enum ServerCertPolicy {
    /// Exactly one of these DER certificates (a phone pinning its ITL TVS record, T-TVS).
    Pin(Vec<Vec<u8>>),
    /// Any certificate; the caller judges the presented one (phone-core decides T-HTTPS).
    AcceptAny,
}

/// The pinning / accept-any verifier. Handshake signatures are always checked with the
/// presented key, so a server cannot present a certificate whose key it does not hold.
#[derive(Debug)]
pub struct PinningVerifier {
    policy: ServerCertPolicy,
    algs: WebPkiSupportedAlgorithms,
    only: Option<Vec<SignatureScheme>>,
}

impl PinningVerifier {
    /// New verifier.
    pub fn new(policy: ServerCertPolicy) -> Self {
        Self {
            policy,
            algs: algorithms(),
            only: None,
        }
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match &self.policy {
            ServerCertPolicy::AcceptAny => Ok(ServerCertVerified::assertion()),
            ServerCertPolicy::Pin(pins) => {
                if pins.iter().any(|p| p.as_slice() == end_entity.as_ref()) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(Error::InvalidCertificate(
                        rustls::CertificateError::ApplicationVerificationFailure,
                    ))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut all = self.algs.supported_schemes();
        if let Some(only) = &self.only {
            all.retain(|s| only.contains(s));
        }
        all
    }
}

/// A client config with the given server policy, no client certificate, no session resumption
/// (phone-behaviour §4.3).
pub fn client_config(policy: ServerCertPolicy) -> Arc<ClientConfig> {
    client_config_with(policy, None)
}

/// Same as [`client_config`], restricted to the listed signature schemes when `schemes` is given
/// (e.g. RSA only, to see the RSA identity of 6971).
pub fn client_config_with(
    policy: ServerCertPolicy,
    schemes: Option<Vec<SignatureScheme>>,
) -> Arc<ClientConfig> {
    let mut verifier = PinningVerifier::new(policy);
    verifier.only = schemes;
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

/// The server name clients send (CUCM phones connect by IP; rustls needs a name).
pub fn server_name(addr: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.into())
}
