//! The per-model state machine of the provider, as one transition function.
//!
//! ```text
//! NotDownloaded --StartDownload--> Downloading --DownloadCompleted--> Downloaded
//! Downloading --DownloadFailed | DownloadCancelled--> NotDownloaded
//! Downloaded --StartLoad--> Loading --LoadCompleted--> Ready
//! Loading --LoadFailed--> Downloaded      Ready --Unload--> Downloaded
//! Downloaded --Delete--> NotDownloaded
//! ```
//! Anything else is refused. Keeping the legal moves in one `match` makes the table
//! test exhaustive and keeps every caller honest: nobody sets a state directly.

use serde::{Deserialize, Serialize};

/// Where a model is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "specta", specta(rename = "MlxModelState"))]
#[serde(rename_all = "snake_case")]
pub enum ModelState {
    NotDownloaded,
    Downloading,
    Downloaded,
    Loading,
    Ready,
}

/// What happens to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Transition {
    StartDownload,
    DownloadCompleted,
    DownloadFailed,
    DownloadCancelled,
    StartLoad,
    LoadCompleted,
    LoadFailed,
    Unload,
    Delete,
}

impl ModelState {
    /// The state after `transition`, or `None` when the diagram above has no such edge.
    pub(crate) fn next(self, transition: Transition) -> Option<ModelState> {
        use ModelState::*;
        use Transition::*;
        match (self, transition) {
            (NotDownloaded, StartDownload) => Some(Downloading),
            (Downloading, DownloadCompleted) => Some(Downloaded),
            (Downloading, DownloadFailed | DownloadCancelled) => Some(NotDownloaded),
            (Downloaded, StartLoad) => Some(Loading),
            (Loading, LoadCompleted) => Some(Ready),
            (Loading, LoadFailed) => Some(Downloaded),
            (Ready, Unload) => Some(Downloaded),
            (Downloaded, Delete) => Some(NotDownloaded),
            _ => None,
        }
    }

    /// [`Self::next`], or an `IllegalTransition` error naming `model_id`: how the store
    /// (downloads) and the session (loads) check each of their moves.
    pub(crate) fn checked_next(self, model_id: &str, transition: Transition) -> crate::error::Result<ModelState> {
        self.next(transition).ok_or_else(|| crate::error::Error::IllegalTransition {
            model_id: model_id.to_string(),
            from: format!("{self:?}"),
            transition: format!("{transition:?}"),
        })
    }

    /// Human words for messages ("downloading").
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ModelState::NotDownloaded => "not downloaded",
            ModelState::Downloading => "downloading",
            ModelState::Downloaded => "downloaded",
            ModelState::Loading => "loading",
            ModelState::Ready => "loaded",
        }
    }
}

/// The one delete rule: why deleting a model's files is refused now, or `None` when it
/// may go ahead. Downloading and loading must finish (or be cancelled) first, and so must
/// a generation; a loaded, idle model is no obstacle (it is unloaded first). The status
/// carries this answer (`delete_blocked`) so a UI asks instead of deciding again.
pub(crate) fn delete_refusal(model_id: &str, state: ModelState, generating: bool) -> Option<crate::error::Error> {
    let blocking = match state {
        _ if generating => "generating",
        ModelState::Downloading | ModelState::Loading => state.describe(),
        ModelState::NotDownloaded | ModelState::Downloaded | ModelState::Ready => return None,
    };
    Some(crate::error::Error::Busy {
        model_id: model_id.to_string(),
        state: blocking.to_string(),
        action: "deleting it",
    })
}

impl std::fmt::Display for ModelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::ModelState::*;
    use super::Transition::*;
    use super::*;

    const STATES: [ModelState; 5] = [NotDownloaded, Downloading, Downloaded, Loading, Ready];
    const TRANSITIONS: [Transition; 9] = [
        StartDownload,
        DownloadCompleted,
        DownloadFailed,
        DownloadCancelled,
        StartLoad,
        LoadCompleted,
        LoadFailed,
        Unload,
        Delete,
    ];

    /// The diagram at the top of this module, edge by edge.
    const LEGAL: [(ModelState, Transition, ModelState); 9] = [
        (NotDownloaded, StartDownload, Downloading),
        (Downloading, DownloadCompleted, Downloaded),
        (Downloading, DownloadFailed, NotDownloaded),
        (Downloading, DownloadCancelled, NotDownloaded),
        (Downloaded, StartLoad, Loading),
        (Loading, LoadCompleted, Ready),
        (Loading, LoadFailed, Downloaded),
        (Ready, Unload, Downloaded),
        (Downloaded, Delete, NotDownloaded),
    ];

    #[test]
    fn every_pair_is_legal_exactly_when_the_diagram_has_the_edge() {
        for state in STATES {
            for transition in TRANSITIONS {
                let expected =
                    LEGAL.iter().find(|(from, by, _)| *from == state && *by == transition).map(|(_, _, to)| *to);
                assert_eq!(state.next(transition), expected, "{state:?} --{transition:?}-->");
            }
        }
    }

    #[test]
    fn delete_is_refused_exactly_while_downloading_loading_or_generating() {
        for state in STATES {
            for generating in [false, true] {
                let refusal = delete_refusal("a/b", state, generating);
                let expected = generating || matches!(state, Downloading | Loading);
                assert_eq!(refusal.is_some(), expected, "{state:?}, generating: {generating}");
                if let Some(error) = refusal {
                    let word = if generating { "generating" } else { state.describe() };
                    assert_eq!(error.kind(), crate::ErrorKind::Busy);
                    assert!(error.to_string().contains(word) && error.to_string().contains("a/b"), "{error}");
                }
            }
        }
    }

    #[test]
    fn states_serialize_in_snake_case() {
        assert_eq!(serde_json::to_string(&NotDownloaded).unwrap(), "\"not_downloaded\"");
        assert_eq!(serde_json::to_string(&Ready).unwrap(), "\"ready\"");
    }
}
