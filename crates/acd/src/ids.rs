//! Identifier newtypes, so an agent id can never be passed where a queue id is expected.

use std::fmt;
use std::sync::Arc;

macro_rules! shared_str_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Creates the identifier from any string.
            pub fn new(id: impl AsRef<str>) -> Self {
                Self(Arc::from(id.as_ref()))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self::new(id)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(Arc::from(id))
            }
        }
    };
}

shared_str_id!(
    /// An agent's identity (login name or extension); cheap to clone.
    AgentId
);
shared_str_id!(
    /// A queue's identity as written in the configuration; cheap to clone.
    QueueId
);
shared_str_id!(
    /// A skill name such as `billing` or `french`; cheap to clone.
    Skill
);

/// A call's identity, chosen by the call-control layer and unique among live calls.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_by_content_and_print_plainly() {
        assert_eq!(AgentId::new("alice"), AgentId::from(String::from("alice")));
        assert_ne!(AgentId::new("alice"), AgentId::new("bob"));
        assert_eq!(QueueId::new("sales").to_string(), "sales");
        assert_eq!(format!("{:?}", Skill::new("fr")), "Skill(\"fr\")");
        assert_eq!(CallId(7).to_string(), "call#7");
    }
}
