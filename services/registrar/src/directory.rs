//! The number directory: which site each extension block and each named user belongs to and
//! their E.164 numbers, so a call to a central-site user can still go out over the PSTN while
//! the WAN is down, a DID call from the PSTN finds its branch extension, and a branch user's
//! PSTN call carries the user's own number.
use serde::Deserialize;

/// One `[[directory]]` entry of a site: a block of extensions and the E.164 numbers they have
/// from the PSTN (`first`, `last`: extension `first + n` is `e164 + n`), or one user known by
/// name and the number it has (`user`): its DID, and its calling number on the PSTN.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryEntry {
    pub site: String,
    pub first: Option<String>,
    pub last: Option<String>,
    pub user: Option<String>,
    pub e164: String,
}

#[derive(Debug, Clone)]
struct Block {
    site: String,
    first: u64,
    last: u64,
    width: usize,
    e164: String,
}

#[derive(Debug, Clone)]
struct Named {
    site: String,
    user: String,
    e164: String,
}

#[derive(Debug, Clone, Default)]
pub struct Directory {
    blocks: Vec<Block>,
    named: Vec<Named>,
}

impl Directory {
    pub fn new(entries: &[DirectoryEntry]) -> Directory {
        let mut directory = Directory::default();
        for e in entries {
            match (&e.first, &e.last, &e.user) {
                (Some(first), Some(last), _) => {
                    if let (Ok(f), Ok(l)) = (first.parse(), last.parse()) {
                        directory.blocks.push(Block { site: e.site.clone(), first: f, last: l, width: first.len(), e164: e.e164.clone() });
                    }
                }
                (_, _, Some(user)) => directory.named.push(Named { site: e.site.clone(), user: user.clone(), e164: e.e164.clone() }),
                _ => {}
            }
        }
        directory
    }

    /// The site and E.164 number of an extension, or of a user known by name.
    pub fn e164_of(&self, user: &str) -> Option<(&str, String)> {
        let Some(extension) = digits(user) else {
            return self.named.iter().find(|n| n.user == user).map(|n| (n.site.as_str(), n.e164.clone()));
        };
        let n: u64 = extension.parse().ok()?;
        self.blocks
            .iter()
            .find(|b| user.len() == b.width && (b.first..=b.last).contains(&n))
            .and_then(|b| Some((b.site.as_str(), offset(&b.e164, n - b.first)?)))
    }

    /// The site and extension (or user name) an E.164 number (with or without `+`) belongs to.
    pub fn extension_of(&self, number: &str) -> Option<(&str, String)> {
        let wanted = digits(number)?;
        let in_block = self.blocks.iter().find_map(|b| {
            let base = digits(&b.e164)?;
            if wanted.len() != base.len() {
                return None;
            }
            let delta = wanted.parse::<u128>().ok()?.checked_sub(base.parse::<u128>().ok()?)?;
            let ext = b.first.checked_add(u64::try_from(delta).ok()?)?;
            (ext <= b.last).then(|| (b.site.as_str(), format!("{ext:0width$}", width = b.width)))
        });
        in_block.or_else(|| {
            self.named.iter().find(|n| digits(&n.e164) == Some(wanted)).map(|n| (n.site.as_str(), n.user.clone()))
        })
    }
}

/// Digits with an optional leading `+`: something the PSTN side can take.
pub fn is_dialable(s: &str) -> bool {
    digits(s).is_some()
}

/// The digits of a dialable number (`+` allowed in front), or None.
fn digits(s: &str) -> Option<&str> {
    let d = s.strip_prefix('+').unwrap_or(s);
    (!d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
}

/// `e164 + n`, keeping its `+` and its length.
fn offset(e164: &str, n: u64) -> Option<String> {
    let (plus, d) = match e164.strip_prefix('+') {
        Some(d) => ("+", d),
        None => ("", e164),
    };
    let v = d.parse::<u128>().ok()?.checked_add(u128::from(n))?;
    let s = format!("{v:0width$}", width = d.len());
    (s.len() == d.len()).then(|| format!("{plus}{s}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// hq's extensions 2000-2999 and the branch's 3000-3099 with their DIDs.
    pub(crate) fn dir() -> Directory {
        let r = |site: &str, first: &str, last: &str, e164: &str| DirectoryEntry {
            site: site.into(),
            first: Some(first.into()),
            last: Some(last.into()),
            user: None,
            e164: e164.into(),
        };
        let alice = DirectoryEntry { site: "branch".into(), first: None, last: None, user: Some("alice".into()), e164: "+15559870500".into() };
        Directory::new(&[r("hq", "2000", "2999", "+15551232000"), r("branch", "3000", "3099", "+15559870100"), alice])
    }

    #[test]
    fn extensions_map_to_their_did_and_back() {
        let d = dir();
        assert_eq!(d.e164_of("2042"), Some(("hq", "+15551232042".to_string())));
        assert_eq!(d.e164_of("3099"), Some(("branch", "+15559870199".to_string())));
        assert_eq!(d.e164_of("3100"), None);
        assert_eq!(d.e164_of("042"), None);
        assert_eq!(d.extension_of("+15559870107"), Some(("branch", "3007".to_string())));
        assert_eq!(d.extension_of("15551232999"), Some(("hq", "2999".to_string())));
        assert_eq!(d.extension_of("+15559870200"), None);
        assert_eq!(d.extension_of("+4930123"), None);
    }

    #[test]
    fn a_user_known_by_name_has_its_own_number() {
        let d = dir();
        assert_eq!(d.e164_of("alice"), Some(("branch", "+15559870500".to_string())));
        assert_eq!(d.e164_of("bob"), None);
        assert_eq!(d.extension_of("+15559870500"), Some(("branch", "alice".to_string())));
    }
}
