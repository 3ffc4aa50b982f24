//! The chain's follow operation: `custom_json` with id `follow`.
//!
//! Why a module of its own, in `chain`: three parts of steemgate must agree
//! on it byte for byte: the stale-follows report (it shows the operation a
//! wallet will sign and builds the hot-sign link), the gateway's simulated
//! wallet (it broadcasts the same operation to the devnet) and the devnet
//! (it checks and applies it). A follow is
//! `["custom_json", {"required_auths": [], "required_posting_auths": [FOLLOWER],
//! "id": "follow", "json": "[\"follow\",{\"follower\":…,\"following\":…,\"what\":[…]}]"}]`
//! where `what` is `[]` (unfollow), `["blog"]` (follow) or `["ignore"]`
//! (mute). Anything else is refused here, never guessed at.

use serde::{Deserialize, Serialize};

use super::AccountName;
use super::crypto::CustomJsonOperation;

/// The `custom_json` id of follow operations.
pub const FOLLOW_ID: &str = "follow";

/// What a follow operation sets the relation to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FollowWhat {
    /// `what: []`: neither followed nor muted.
    Nothing,
    /// `what: ["blog"]`: followed.
    Blog,
    /// `what: ["ignore"]`: muted.
    Ignore,
}

impl FollowWhat {
    /// The `what` list as the chain writes it.
    pub fn as_list(self) -> &'static [&'static str] {
        match self {
            FollowWhat::Nothing => &[],
            FollowWhat::Blog => &["blog"],
            FollowWhat::Ignore => &["ignore"],
        }
    }

    /// The relation a `what` list sets; `None` for anything the chain would
    /// not accept as one relation (both kinds, an unknown word, repeats).
    pub fn from_list<S: AsRef<str>>(what: &[S]) -> Option<Self> {
        match what {
            [] => Some(FollowWhat::Nothing),
            [one] if one.as_ref() == "blog" => Some(FollowWhat::Blog),
            [one] if one.as_ref() == "ignore" => Some(FollowWhat::Ignore),
            _ => None,
        }
    }
}

/// One follow operation, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follow {
    pub follower: AccountName,
    pub following: AccountName,
    pub what: FollowWhat,
}

/// Why a `custom_json` is not a follow operation the chain would apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FollowError {
    #[error("custom_json id is {0:?}, not \"follow\"")]
    NotFollow(String),
    #[error("a follow is signed with the posting key only: required_auths must be empty")]
    ActiveAuth,
    #[error("required_posting_auths must be exactly the follower {0:?}")]
    PostingAuth(String),
    #[error("the follow json is not [\"follow\", {{follower, following, what}}]: {0}")]
    Json(String),
    #[error("invalid account name {0:?} in the follow json")]
    Name(String),
    #[error("what must be [], [\"blog\"] or [\"ignore\"]")]
    What,
    #[error("an account cannot follow itself")]
    SelfFollow,
}

/// The payload object inside the json text, fields in the chain's order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowBody<'a> {
    #[serde(borrow)]
    follower: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    following: std::borrow::Cow<'a, str>,
    what: Vec<String>,
}

/// The `json` text of a follow:
/// `["follow",{"follower":"A","following":"B","what":[]}]`, no spaces.
pub fn follow_json(follower: &AccountName, following: &AccountName, what: FollowWhat) -> String {
    let body = FollowBody {
        follower: follower.as_str().into(),
        following: following.as_str().into(),
        what: what.as_list().iter().map(|w| (*w).to_string()).collect(),
    };
    // Serializing strings and a list of strings cannot fail.
    serde_json::to_string(&("follow", body)).unwrap_or_default()
}

/// The `custom_json` operation that sets `follower`'s relation to `following`.
pub fn follow_operation(
    follower: &AccountName,
    following: &AccountName,
    what: FollowWhat,
) -> CustomJsonOperation {
    CustomJsonOperation {
        required_auths: Vec::new(),
        required_posting_auths: vec![follower.as_str().to_string()],
        id: FOLLOW_ID.to_string(),
        json: follow_json(follower, following, what),
    }
}

/// The standard unfollow (`what: []`).
pub fn unfollow_operation(follower: &AccountName, following: &AccountName) -> CustomJsonOperation {
    follow_operation(follower, following, FollowWhat::Nothing)
}

/// Checks a `custom_json` as the chain's follow plugin does: id `follow`,
/// posting authority of the follower only, a `["follow", {…}]` payload with
/// canonical names and one relation.
pub fn parse_follow(op: &CustomJsonOperation) -> Result<Follow, FollowError> {
    if op.id != FOLLOW_ID {
        return Err(FollowError::NotFollow(op.id.chars().take(40).collect()));
    }
    if !op.required_auths.is_empty() {
        return Err(FollowError::ActiveAuth);
    }
    let (kind, body): (String, FollowBody<'_>) =
        serde_json::from_str(&op.json).map_err(|e| FollowError::Json(e.to_string()))?;
    if kind != "follow" {
        return Err(FollowError::Json(format!(
            "{:?} is not \"follow\"",
            kind.chars().take(40).collect::<String>()
        )));
    }
    let name = |raw: &str| {
        AccountName::parse(raw)
            .ok()
            .filter(|name| name.as_str() == raw)
            .ok_or_else(|| FollowError::Name(raw.chars().take(40).collect()))
    };
    let follower = name(&body.follower)?;
    let following = name(&body.following)?;
    if op.required_posting_auths != [follower.as_str()] {
        return Err(FollowError::PostingAuth(follower.as_str().to_string()));
    }
    if follower == following {
        return Err(FollowError::SelfFollow);
    }
    let what = FollowWhat::from_list(&body.what).ok_or(FollowError::What)?;
    Ok(Follow {
        follower,
        following,
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> AccountName {
        AccountName::parse(raw).unwrap()
    }

    #[test]
    fn the_unfollow_is_the_standard_operation_byte_for_byte() {
        let op = unfollow_operation(&name("demo"), &name("kalo-art"));
        let json = serde_json::to_string(&crate::chain::crypto::Operation::CustomJson(op.clone()))
            .unwrap();
        assert_eq!(
            json,
            r#"["custom_json",{"required_auths":[],"required_posting_auths":["demo"],"id":"follow","json":"[\"follow\",{\"follower\":\"demo\",\"following\":\"kalo-art\",\"what\":[]}]"}]"#
        );
        assert_eq!(
            parse_follow(&op).unwrap(),
            Follow {
                follower: name("demo"),
                following: name("kalo-art"),
                what: FollowWhat::Nothing
            }
        );
        let mute = follow_operation(&name("bob"), &name("carol"), FollowWhat::Ignore);
        assert_eq!(
            mute.json,
            r#"["follow",{"follower":"bob","following":"carol","what":["ignore"]}]"#
        );
        assert_eq!(parse_follow(&mute).unwrap().what, FollowWhat::Ignore);
    }

    #[test]
    fn anything_but_a_clean_follow_is_refused() {
        let good = unfollow_operation(&name("demo"), &name("alice"));
        let with = |change: &dyn Fn(&mut CustomJsonOperation)| {
            let mut op = good.clone();
            change(&mut op);
            parse_follow(&op)
        };
        assert!(matches!(
            with(&|op| op.id = "reblog".into()),
            Err(FollowError::NotFollow(_))
        ));
        assert!(matches!(
            with(&|op| op.required_auths = vec!["demo".into()]),
            Err(FollowError::ActiveAuth)
        ));
        assert!(matches!(
            with(&|op| op.required_posting_auths = vec!["alice".into()]),
            Err(FollowError::PostingAuth(_))
        ));
        assert!(matches!(
            with(&|op| op.required_posting_auths = vec!["demo".into(), "demo".into()]),
            Err(FollowError::PostingAuth(_))
        ));
        for json in [
            r#"["reblog",{"follower":"demo","following":"alice","what":[]}]"#,
            r#"{"follower":"demo","following":"alice","what":[]}"#,
            r#"["follow",{"follower":"demo","following":"alice","what":[],"extra":1}]"#,
            "not json",
        ] {
            assert!(
                matches!(with(&|op| op.json = json.into()), Err(FollowError::Json(_))),
                "{json}"
            );
        }
        assert!(matches!(
            with(&|op| op.json =
                r#"["follow",{"follower":"demo","following":"Alice","what":[]}]"#.into()),
            Err(FollowError::Name(_))
        ));
        assert!(matches!(
            with(&|op| op.json =
                r#"["follow",{"follower":"demo","following":"alice","what":["blog","ignore"]}]"#
                    .into()),
            Err(FollowError::What)
        ));
        assert!(matches!(
            with(&|op| op.json =
                r#"["follow",{"follower":"demo","following":"demo","what":[]}]"#.into()),
            Err(FollowError::SelfFollow)
        ));
    }
}
