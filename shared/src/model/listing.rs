//! A page of records as the API answers it: the repository makes it, the
//! services pass it on, the router serializes it.

/// One page of a listing, as the API answers it: the records, the cursor
/// to the next page (when more may follow), and the stored records of this
/// page that could not be read. One bad record spoils only itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Listing<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
}

/// A stored record a listing skipped because it does not decode.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Unreadable {
    /// The record's id when its document names one, else its sort key.
    pub id: String,
    pub error: String,
}

impl<T> Listing<T> {
    pub fn empty() -> Self {
        Listing {
            data: Vec::new(),
            next_cursor: None,
            unreadable: Vec::new(),
        }
    }

    /// The same page with each record shown as `f` shows it.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listing<U> {
        Listing {
            data: self.data.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
            unreadable: self.unreadable,
        }
    }
}
