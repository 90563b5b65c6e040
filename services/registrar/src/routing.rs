//! Where an initial request from or to the branch goes: a pure decision over the bindings, the
//! number directory and the WAN state, so it is tested without sockets.
use crate::directory::{is_dialable, Directory};
use holdfast_store::Binding;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No central site: the branch is its own registrar and proxy.
    Standalone,
    /// The WAN is up: users not at the branch are the central site's business.
    Normal,
    /// The WAN is down: the branch serves from its cache and calls out over the PSTN.
    Survival,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// Fork to these bindings.
    Local(Vec<Binding>),
    /// To the central proxy, Request-URI unchanged.
    Central,
    /// To sba-mediation, for this number.
    Pstn(String),
    Refuse(u16, &'static str),
}

pub struct Router<'a> {
    pub directory: &'a Directory,
    /// This branch's site name in the directory.
    pub site: &'a str,
    pub domain: &'a str,
    pub pstn: bool,
}

impl Router<'_> {
    /// `user` is the Request-URI's user part (or a tel: number); `ours` whether its host is this
    /// branch (its domain or address). `lookup` gives the live bindings of an AOR.
    pub fn route(&self, user: Option<&str>, ours: bool, mode: Mode, lookup: impl Fn(&str) -> Vec<Binding>) -> Destination {
        let Some(user) = user.filter(|u| !u.is_empty()) else {
            return Destination::Refuse(404, "Not Found (no user in the Request-URI)");
        };
        if ours {
            let here = lookup(&format!("sip:{user}@{}", self.domain));
            if !here.is_empty() {
                return Destination::Local(here);
            }
            // A branch DID dialled as such reaches the extension behind it.
            if let Some((site, ext)) = self.directory.extension_of(user) {
                if site == self.site {
                    let here = lookup(&format!("sip:{ext}@{}", self.domain));
                    if !here.is_empty() {
                        return Destination::Local(here);
                    }
                    return Destination::Refuse(480, "Temporarily Unavailable (extension not registered)");
                }
            }
        }
        match mode {
            Mode::Normal => Destination::Central,
            Mode::Standalone | Mode::Survival => self.outside(user, ours, mode),
        }
    }

    /// A user not at the branch while it is on its own: numbers go out over the PSTN (a
    /// central-site extension as its E.164 DID), names cannot be reached.
    fn outside(&self, user: &str, ours: bool, mode: Mode) -> Destination {
        if !is_dialable(user) {
            return match mode {
                Mode::Survival => Destination::Refuse(480, "Temporarily Unavailable (central site unreachable)"),
                _ if ours => Destination::Refuse(404, "Not Found"),
                _ => Destination::Refuse(404, "Not Found (unknown domain)"),
            };
        }
        if let Some((site, _)) = self.directory.e164_of(user) {
            if site == self.site {
                return Destination::Refuse(480, "Temporarily Unavailable (extension not registered)");
            }
        }
        if !self.pstn {
            return Destination::Refuse(503, "Service Unavailable (no PSTN route configured)");
        }
        let number = self.directory.e164_of(user).map(|(_, e164)| e164).unwrap_or_else(|| user.to_string());
        Destination::Pstn(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::tests::dir;
    use holdfast_store::Origin;

    fn binding(aor: &str) -> Binding {
        Binding {
            aor: aor.into(),
            contact: "sip:x@10.0.0.5".into(),
            instance: None,
            reg_id: None,
            call_id: "c".into(),
            cseq: 1,
            q: None,
            expires_at: i64::MAX,
            path: vec![],
            source: "10.0.0.5:5060".into(),
            transport: "udp".into(),
            user_agent: None,
            updated_at: 0,
            origin: Origin::Central,
        }
    }

    fn lookup(aor: &str) -> Vec<Binding> {
        match aor {
            "sip:3001@branch.test" | "sip:alice@branch.test" => vec![binding(aor)],
            _ => vec![],
        }
    }

    fn router(d: &Directory) -> Router<'_> {
        Router { directory: d, site: "branch", domain: "branch.test", pstn: true }
    }

    #[test]
    fn branch_users_stay_local_in_every_mode() {
        let d = dir();
        for mode in [Mode::Standalone, Mode::Normal, Mode::Survival] {
            assert!(matches!(router(&d).route(Some("alice"), true, mode, lookup), Destination::Local(_)));
            assert!(matches!(router(&d).route(Some("+15559870101"), true, mode, lookup), Destination::Local(_)));
        }
    }

    #[test]
    fn others_go_to_the_central_site_while_the_wan_is_up() {
        let d = dir();
        assert_eq!(router(&d).route(Some("bob"), true, Mode::Normal, lookup), Destination::Central);
        assert_eq!(router(&d).route(Some("2042"), true, Mode::Normal, lookup), Destination::Central);
        assert_eq!(router(&d).route(Some("+4930123"), false, Mode::Normal, lookup), Destination::Central);
    }

    #[test]
    fn in_survival_numbers_go_to_the_pstn_and_central_extensions_as_their_did() {
        let d = dir();
        assert_eq!(router(&d).route(Some("2042"), true, Mode::Survival, lookup), Destination::Pstn("+15551232042".into()));
        assert_eq!(router(&d).route(Some("+4930123"), true, Mode::Survival, lookup), Destination::Pstn("+4930123".into()));
        assert!(matches!(router(&d).route(Some("bob"), true, Mode::Survival, lookup), Destination::Refuse(480, _)));
        assert!(matches!(router(&d).route(Some("3050"), true, Mode::Survival, lookup), Destination::Refuse(480, _)));
        let no_pstn = Router { pstn: false, ..router(&d) };
        assert!(matches!(no_pstn.route(Some("2042"), true, Mode::Survival, lookup), Destination::Refuse(503, _)));
    }
}
