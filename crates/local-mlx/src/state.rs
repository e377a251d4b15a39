//! The per-model state machine of the seed design, as one transition function.
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
pub enum Transition {
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
    /// The state after `transition`, or `None` when the seed's diagram has no such edge.
    pub fn next(self, transition: Transition) -> Option<ModelState> {
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

    /// Human words for messages ("downloading").
    pub fn describe(self) -> &'static str {
        match self {
            ModelState::NotDownloaded => "not downloaded",
            ModelState::Downloading => "downloading",
            ModelState::Downloaded => "downloaded",
            ModelState::Loading => "loading",
            ModelState::Ready => "loaded",
        }
    }
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

    /// The seed's diagram, edge by edge.
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
    fn every_pair_is_legal_exactly_when_the_seed_diagram_has_the_edge() {
        for state in STATES {
            for transition in TRANSITIONS {
                let expected =
                    LEGAL.iter().find(|(from, by, _)| *from == state && *by == transition).map(|(_, _, to)| *to);
                assert_eq!(state.next(transition), expected, "{state:?} --{transition:?}-->");
            }
        }
    }

    #[test]
    fn states_serialize_in_snake_case() {
        assert_eq!(serde_json::to_string(&NotDownloaded).unwrap(), "\"not_downloaded\"");
        assert_eq!(serde_json::to_string(&Ready).unwrap(), "\"ready\"");
    }
}
