//! Matching an entry's url against the URL a tool asks about (git, cargo, docker).
//!
//! Only the parts the helpers compare are read: scheme, user, host and port, and the path
//! segments. Hosts compare case-insensitively, default ports (80 for http, 443 for https) are
//! dropped, a trailing `.git` on the last path segment is ignored, and an entry url without a
//! scheme (`github.com`) means https.

/// A parsed URL, reduced to what matching needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    scheme: String,
    user: Option<String>,
    host: String,
    segments: Vec<String>,
}

impl Target {
    /// Parses `scheme://[user@]host[:port][/path][?query][#fragment]`; `None` if there is no host.
    pub fn parse(url: &str) -> Option<Target> {
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("https".to_owned(), url),
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
        let mut host = hostport.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => Some(":80"),
            "https" => Some(":443"),
            _ => None,
        };
        if let Some(p) = default_port
            && let Some(h) = host.strip_suffix(p)
        {
            host = h.to_owned();
        }
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
            user: user.filter(|u| !u.is_empty()),
            host,
            segments,
        })
    }

    /// `scheme://host/path`, for messages.
    pub fn describe(&self) -> String {
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
        if e.scheme != self.scheme || e.host != self.host {
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
}
