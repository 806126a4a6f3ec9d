//! A valid component of an unrelated world (`test:other/other`, exporting
//! `run`): the host must refuse to load it as a node, with a clear error.

wit_bindgen::generate!({
    inline: "
        package test:other;

        world other {
            export run: func() -> string;
        }
    ",
});

struct Other;

impl Guest for Other {
    fn run() -> String {
        "not a weft node".to_owned()
    }
}

export!(Other);
