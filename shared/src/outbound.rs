//! Guarding outgoing calls (subscriber and agent URLs) against SSRF:
//! destinations that are, or resolve to, private, loopback, link-local,
//! CGNAT, unique-local, multicast, reserved or cloud-metadata addresses are
//! refused, unless an operator allowlists a range (local development and
//! tests reach loopback that way). The check runs when a subscription is
//! saved and again on every send, inside the HTTP client's DNS resolution, so
//! a name cannot resolve to a harmless address at check time and to an
//! internal one at connect time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Why a destination is refused. The texts are shown to API callers, so
/// they never say what a name resolved to beyond "refused".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("not a valid URL: {0}")]
    InvalidUrl(String),
    #[error("must use https (plain http needs HOOKRUN_OUTBOUND_ALLOW_HTTP=true)")]
    HttpNotAllowed,
    #[error("scheme {0:?} is not allowed")]
    Scheme(String),
    #[error("must not carry credentials")]
    Credentials,
    #[error("must have a host")]
    NoHost,
    /// An IP-literal host in a refused range.
    #[error(
        "address {0} is private, loopback, link-local or reserved \
         (ranges listed in HOOKRUN_OUTBOUND_ALLOW_CIDRS may be reached)"
    )]
    Address(IpAddr),
    #[error("host {host} does not resolve{detail}")]
    Unresolvable { host: String, detail: String },
    /// A name that resolves to a refused address.
    #[error("host {host} resolves to a refused address {ip} (ranges listed in HOOKRUN_OUTBOUND_ALLOW_CIDRS may be reached)")]
    ResolvesToRefused { host: String, ip: IpAddr },
    /// At connect time: every address of the name is refused.
    #[error("destination refused: {0} resolves only to private, loopback or reserved addresses")]
    OnlyRefused(String),
}

/// The guard's refusal somewhere in an HTTP client error's sources (the
/// resolver below reports it through reqwest's connect error).
pub fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<OutboundError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<OutboundError>() {
            return Some(refused.clone());
        }
        source = s.source();
    }
    None
}

/// What outgoing calls may reach.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    /// Plain `http://` destinations are accepted (default: HTTPS only).
    pub allow_http: bool,
    /// Ranges reachable even though they are otherwise refused.
    pub allow: Vec<IpNet>,
}

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, cloud metadata included
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_forbidden(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return v4_forbidden(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata fd00:ec2::254 too)
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
}

/// Addresses that are never a subscriber's, whatever DNS says.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

impl OutboundPolicy {
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip)) || !is_forbidden(ip)
    }

    /// Checks the URL's form: scheme, host, no credentials, and an IP
    /// literal host against the address rules (names are checked when
    /// resolved).
    pub fn check_url(&self, raw: &str) -> Result<reqwest::Url, OutboundError> {
        let url = reqwest::Url::parse(raw).map_err(|e| OutboundError::InvalidUrl(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(OutboundError::HttpNotAllowed),
            other => return Err(OutboundError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::Credentials);
        }
        match url.host() {
            None => Err(OutboundError::NoHost),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map(|_| url.clone()),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map(|_| url.clone()),
            Some(url::Host::Domain(_)) => Ok(url.clone()),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), OutboundError> {
        if self.ip_allowed(ip) {
            Ok(())
        } else {
            Err(OutboundError::Address(ip))
        }
    }

    /// Checks the URL and every address its host resolves to.
    pub async fn check_destination(&self, raw: &str) -> Result<reqwest::Url, OutboundError> {
        let url = self.check_url(raw)?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            let unresolvable = |detail: String| OutboundError::Unresolvable {
                host: host.to_owned(),
                detail,
            };
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| unresolvable(format!(": {e}")))?
                .collect();
            if addrs.is_empty() {
                return Err(unresolvable(String::new()));
            }
            for a in addrs {
                if !self.ip_allowed(a.ip()) {
                    return Err(OutboundError::ResolvesToRefused {
                        host: host.to_owned(),
                        ip: a.ip(),
                    });
                }
            }
        }
        Ok(url)
    }

    /// An HTTP client for subscriber calls: this policy on every resolved
    /// address, no redirects (a 3xx is a failed delivery), the given timeout.
    pub fn client(&self, timeout: std::time::Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("hookrun/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver(self.clone())))
            .build()
            .expect("http client builds")
    }
}

/// Resolves names and keeps only the addresses the policy allows.
struct GuardedResolver(OutboundPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| policy.ip_allowed(a.ip()))
                .collect();
            if allowed.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(OutboundError::OnlyRefused(host));
                return Err(e);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Parses `HOOKRUN_OUTBOUND_ALLOW_CIDRS`: comma-separated CIDRs or addresses.
pub fn parse_allowlist(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not a CIDR or an IP address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refused_ranges() {
        for bad in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            assert!(is_forbidden(ip(bad)), "{bad} must be refused");
        }
        for good in [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_forbidden(ip(good)), "{good} must be allowed");
        }
    }

    #[test]
    fn urls() {
        let p = OutboundPolicy::default();
        assert!(p.check_url("https://example.com/hook").is_ok());
        assert_eq!(
            p.check_url("http://example.com/hook").unwrap_err(),
            OutboundError::HttpNotAllowed
        );
        assert!(p.check_url("https://127.0.0.1/x").is_err());
        assert!(p.check_url("https://[::1]/x").is_err());
        assert!(p
            .check_url("https://169.254.169.254/latest/meta-data")
            .is_err());
        assert!(p.check_url("https://10.0.0.1/").is_err());
        assert!(p.check_url("https://user:pw@example.com/").is_err());
        assert!(p.check_url("ftp://example.com/").is_err());
        assert!(p.check_url("not a url").is_err());

        let dev = OutboundPolicy {
            allow_http: true,
            allow: parse_allowlist("127.0.0.0/8, ::1").unwrap(),
        };
        assert!(dev.check_url("http://127.0.0.1:9000/x").is_ok());
        assert!(
            dev.check_url("http://10.0.0.1/x").is_err(),
            "only the allowlisted range opens"
        );
        assert!(parse_allowlist("nope").is_err());
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let p = OutboundPolicy::default();
        let err = p
            .check_destination("https://localhost/x")
            .await
            .unwrap_err();
        assert!(
            matches!(err, OutboundError::ResolvesToRefused { ref host, .. } if host == "localhost"),
            "{err}"
        );
    }
}
