//! Matching an entry's url against the URL a tool asks about (git, cargo, docker).
//!
//! Only the parts the helpers compare are read: scheme, user, host and port, and the path
//! segments. Hosts compare case-insensitively, default ports (80 for http, 443 for https) are
//! dropped, a trailing `.git` on the last path segment is ignored, and an entry url without a
//! scheme (`github.com`) means https. A target without a scheme (Docker sends `host[:port]`)
//! matches http and https entries alike, on host and port, a missing port being the entry
//! scheme's default.

/// A parsed URL, reduced to what matching needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    scheme: String,
    /// False when the URL had no scheme (and `scheme` is https by default).
    scheme_given: bool,
    user: Option<String>,
    /// Host and port, the scheme's default port dropped.
    host: String,
    /// Host and port as written, lowercased.
    authority: String,
    segments: Vec<String>,
}

/// `host` without `scheme`'s default port.
fn without_default_port<'a>(host: &'a str, scheme: &str) -> &'a str {
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return host,
    };
    host.strip_suffix(default_port).unwrap_or(host)
}

impl Target {
    /// Parses `scheme://[user@]host[:port][/path][?query][#fragment]`; `None` if there is no host.
    pub fn parse(url: &str) -> Option<Target> {
        let url = url.trim();
        let (scheme, rest, scheme_given) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r, true),
            None => ("https".to_owned(), url, false),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.split(':').next().unwrap_or_default().to_owned()), h),
            None => (None, authority),
        };
        let authority = hostport.to_ascii_lowercase();
        let host = without_default_port(&authority, &scheme).to_owned();
        if host.is_empty() || scheme.is_empty() {
            return None;
        }
        let mut segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(last) = segments.last_mut()
            && let Some(stripped) = last.strip_suffix(".git")
            && !stripped.is_empty()
        {
            *last = stripped.to_owned();
        }
        Some(Target {
            scheme,
            scheme_given,
            user: user.filter(|u| !u.is_empty()),
            host,
            authority,
            segments,
        })
    }

    /// `scheme://host/path` (or `host:port (http or https)`), for messages.
    pub fn describe(&self) -> String {
        if !self.scheme_given {
            return format!("{} (http or https)", self.authority);
        }
        format!(
            "{}://{}/{}",
            self.scheme,
            self.host,
            self.segments.join("/")
        )
    }

    /// How well an entry with `entry_url` (and `entry_user`) answers this target; `None` when it
    /// does not. With `match_path` the entry's path must be a prefix of the target's and longer
    /// prefixes win; without it paths are ignored and the least specific entry wins.
    pub fn score(
        &self,
        entry_url: &str,
        match_path: bool,
        entry_user: Option<&str>,
        asked_user: Option<&str>,
    ) -> Option<u32> {
        let e = Target::parse(entry_url)?;
        let same_server = if self.scheme_given {
            e.scheme == self.scheme && e.host == self.host
        } else {
            matches!(e.scheme.as_str(), "http" | "https")
                && e.host == without_default_port(&self.authority, &e.scheme)
        };
        if !same_server {
            return None;
        }
        let asked = asked_user.or(self.user.as_deref());
        let has = entry_user.or(e.user.as_deref());
        let user_bonus = match (asked, has) {
            (Some(a), Some(h)) if a != h => return None,
            (Some(_), Some(_)) => 1,
            _ => 0,
        };
        let n = u32::try_from(e.segments.len())
            .unwrap_or(u32::MAX / 4)
            .min(1000);
        if match_path {
            let prefix = e.segments.len() <= self.segments.len()
                && e.segments.iter().zip(&self.segments).all(|(a, b)| a == b);
            prefix.then_some(n * 2 + user_bonus)
        } else {
            Some((1000 - n) * 2 + user_bonus)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(target: &str, entry: &str, path: bool) -> Option<u32> {
        Target::parse(target)?.score(entry, path, None, None)
    }

    #[test]
    fn matching() {
        assert!(score("https://github.com", "https://GitHub.com/", false).is_some());
        assert!(score("https://github.com:443", "github.com", false).is_some());
        assert!(score("http://github.com", "https://github.com", false).is_none());
        assert!(score("https://github.com", "https://gitlab.com", false).is_none());
        assert!(score("https://h:8080/x", "https://h/x", true).is_none());
        let org = score("https://h/org/repo.git", "https://h/org", true).unwrap();
        let repo = score("https://h/org/repo.git", "https://h/org/repo", true).unwrap();
        let host = score("https://h/org/repo.git", "https://h", true).unwrap();
        assert!(repo > org && org > host);
        assert!(score("https://h/other/repo", "https://h/org", true).is_none());
        assert!(
            score("https://h", "https://h", false) > score("https://h", "https://h/org", false)
        );
        let t = Target::parse("https://bob@h/x").unwrap();
        assert!(t.score("https://h", false, Some("alice"), None).is_none());
        assert!(t.score("https://h", false, Some("bob"), None).is_some());
        assert!(Target::parse("https://").is_none());
    }

    #[test]
    fn a_target_without_a_scheme_matches_http_and_https_entries_on_host_and_port() {
        assert!(score("h:5000", "http://h:5000", false).is_some());
        assert!(score("h:5000", "https://h:5000/", false).is_some());
        assert!(score("h:5000", "http://h:5001", false).is_none());
        assert!(score("h:5000", "http://h", false).is_none());
        assert!(score("h", "http://h", false).is_some());
        assert!(score("h", "https://h:443", false).is_some());
        assert!(score("h:80", "http://h", false).is_some());
        assert!(score("h:80", "https://h", false).is_none());
        assert!(score("h:443", "http://h", false).is_none());
        assert!(score("h", "ftp://h", false).is_none());
        assert!(score("other:5000", "http://h:5000", false).is_none());
        // With a scheme, the scheme still counts (git, cargo).
        assert!(score("https://h:5000", "http://h:5000", false).is_none());
    }
}
