use crate::plan::Loc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed build file: where, and what is wrong.
    #[error("{loc}: {msg}")]
    Syntax { loc: Loc, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{loc}: {text:?} failed with exit code {code}")]
    StepFailed { loc: Loc, text: String, code: i32 },
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn syntax(loc: &Loc, msg: impl Into<String>) -> Error {
        Error::Syntax {
            loc: loc.clone(),
            msg: msg.into(),
        }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
