//! The few fields of `SEP<MAC>.cnf.xml` the phone acts on (§1.5 `cached_config`, §4.2 TVS list).
//! A tolerant extractor, not an XML parser: it never panics and ignores what it does not know.

use std::sync::Arc;

use crate::event::Host;

/// Most CM / TVS members read (the schema allows 5 TVS members, §4.2).
const MAX_MEMBERS: usize = 8;

/// One `<TVS><members><member priority="n">` entry (§4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TvsMember {
    /// `priority` attribute (ascending = preferred).
    pub priority: u8,
    /// `<address>`.
    pub host: Host,
    /// `<port>` (2445 by default).
    pub port: u16,
}

/// The parts of a configuration file that decide trust and registration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PhoneConfig {
    /// CallManager group members in priority order (`processNodeName`, else `name`).
    pub cms: Arc<[Host]>,
    /// TVS members sorted by ascending priority (stable).
    pub tvs: Arc<[TvsMember]>,
    /// `<loadInformation>`.
    pub load: Option<Arc<str>>,
    /// `<deviceSecurityMode>`: 1 non-secure, 2 authenticated, 3 encrypted.
    pub security_mode: u8,
    /// `<encrConfig>true</encrConfig>`: TFTP encrypted config (§1.4).
    pub encrypted: bool,
}

impl PhoneConfig {
    /// Reads the fields from XML text; unknown or malformed parts are skipped.
    pub fn parse(xml: &[u8]) -> PhoneConfig {
        let text = String::from_utf8_lossy(xml);
        let s: &str = &text;
        let mut cms = Vec::new();
        if let Some((_, group)) = element(s, "callManagerGroup").map(|(a, i, _)| (a, i)) {
            for (_, member) in elements(group, "member").take(MAX_MEMBERS) {
                let name = element(member, "processNodeName")
                    .or_else(|| element(member, "name"))
                    .map(|(_, v, _)| v.trim());
                if let Some(n) = name.filter(|n| !n.is_empty()) {
                    cms.push(Host::new(n));
                }
            }
        }
        let mut tvs = Vec::new();
        if let Some((_, block, _)) = element(s, "TVS") {
            for (attrs, member) in elements(block, "member").take(MAX_MEMBERS) {
                let priority = attr(attrs, "priority")
                    .and_then(|p| p.trim().parse::<u8>().ok())
                    .unwrap_or(u8::MAX);
                let host = element(member, "address")
                    .map(|(_, v, _)| v.trim())
                    .filter(|v| !v.is_empty());
                let port = element(member, "port")
                    .and_then(|(_, v, _)| v.trim().parse::<u16>().ok())
                    .unwrap_or(2445);
                if let Some(h) = host {
                    tvs.push(TvsMember {
                        priority,
                        host: Host::new(h),
                        port,
                    });
                }
            }
        }
        tvs.sort_by_key(|m| m.priority);
        let load = element(s, "loadInformation")
            .map(|(_, v, _)| v.trim())
            .filter(|v| !v.is_empty())
            .map(Arc::from);
        let security_mode = element(s, "deviceSecurityMode")
            .and_then(|(_, v, _)| v.trim().parse::<u8>().ok())
            .unwrap_or(1);
        let encrypted =
            element(s, "encrConfig").is_some_and(|(_, v, _)| v.trim().eq_ignore_ascii_case("true"));
        PhoneConfig {
            cms: cms.into(),
            tvs: tvs.into(),
            load,
            security_mode,
            encrypted,
        }
    }

    /// Authenticated or encrypted device security mode (TLS registration, T-CCM).
    pub fn secure(&self) -> bool {
        self.security_mode >= 2
    }
}

/// First `<name …>inner</name>` in `s`: (attributes, inner, end offset). Self-closing → empty.
fn element<'a>(s: &'a str, name: &'a str) -> Option<(&'a str, &'a str, usize)> {
    elements_from(s, name, 0).next()
}

/// Every `<name …>inner</name>` at any depth, not nested in itself.
fn elements<'a>(s: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    elements_from(s, name, 0).map(|(a, i, _)| (a, i))
}

fn elements_from<'a>(
    s: &'a str,
    name: &'a str,
    start: usize,
) -> impl Iterator<Item = (&'a str, &'a str, usize)> + 'a {
    let mut pos = start;
    std::iter::from_fn(move || {
        loop {
            let rest = s.get(pos..)?;
            let open = rest.find('<')?;
            let tag_start = pos.checked_add(open)?.checked_add(1)?;
            let after = s.get(tag_start..)?;
            if !after.starts_with(name) {
                pos = tag_start;
                continue;
            }
            let after_name = after.get(name.len()..)?;
            let next = after_name.chars().next()?;
            if !(next == '>' || next == '/' || next.is_whitespace()) {
                pos = tag_start;
                continue;
            }
            let gt = after_name.find('>')?;
            let attrs_raw = after_name.get(..gt)?;
            let body_start = tag_start
                .checked_add(name.len())?
                .checked_add(gt)?
                .checked_add(1)?;
            if attrs_raw.ends_with('/') {
                pos = body_start;
                return Some((attrs_raw.trim_end_matches('/'), "", body_start));
            }
            let close = format!("</{name}>");
            let body = s.get(body_start..)?;
            let end_rel = body.find(&close)?;
            let inner = body.get(..end_rel)?;
            let end = body_start.checked_add(end_rel)?.checked_add(close.len())?;
            pos = end;
            return Some((attrs_raw, inner, end));
        }
    })
}

fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let i = attrs.find(name)?;
    let rest = attrs.get(i.checked_add(name.len())?..)?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let rest = rest.get(1..)?;
    let end = rest.find(quote)?;
    rest.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?><device><devicePool><callManagerGroup><members>
      <member priority="0"><callManager><name>cm1</name><processNodeName>10.0.0.1</processNodeName></callManager></member>
      <member priority="1"><callManager><processNodeName>10.0.0.2</processNodeName></callManager></member>
      </members></callManagerGroup></devicePool>
      <TVS><members><member priority="1"><port>2445</port><address>10.0.0.2</address></member>
      <member priority="0"><port>2446</port><address>10.0.0.1</address></member></members></TVS>
      <loadInformation model="x">sip88xx.14-2-1</loadInformation><deviceSecurityMode>2</deviceSecurityMode>
      <encrConfig>false</encrConfig></device>"#;

    #[test]
    fn reads_cm_group_tvs_members_load_and_mode() {
        let c = PhoneConfig::parse(XML.as_bytes());
        assert_eq!(
            c.cms.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            ["10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(
            c.tvs.first().map(|m| (m.host.to_string(), m.port)),
            Some(("10.0.0.1".into(), 2446))
        );
        assert_eq!(c.tvs.len(), 2);
        assert_eq!(c.load.as_deref(), Some("sip88xx.14-2-1"));
        assert!(c.secure() && !c.encrypted);
    }

    #[test]
    fn garbage_gives_defaults_without_panicking() {
        for s in [
            "",
            "<",
            "<TVS",
            "<TVS><member priority=\"",
            "<callManagerGroup><member>",
            "\u{0}\u{ff}<<>>",
        ] {
            let c = PhoneConfig::parse(s.as_bytes());
            assert!(c.cms.is_empty() && c.tvs.is_empty() && c.security_mode == 1);
        }
    }
}
