//! SoundCloud's `tag_list` wire form, shared by the API client (which sends
//! and reads it) and the planner (which compares tags): one string, tags separated by spaces, a tag that
//! contains whitespace wrapped in double quotes (`rock "late night"`).
//!
//! The service reads back its own variants (a leading space, extra spaces),
//! so decoding is quote-aware and forgiving, and encoding is canonical.

/// Encodes tags as a `tag_list`. Tags are trimmed; empty ones are dropped;
/// a tag with inner whitespace is quoted. A double quote cannot be escaped
/// in a `tag_list`, so it is removed from the tag.
pub fn encode_tag_list(tags: &[String]) -> String {
    let mut out = String::new();
    for tag in tags {
        let clean: String = tag.chars().filter(|c| *c != '"').collect();
        let clean = clean.trim();
        if clean.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if clean.chars().any(char::is_whitespace) {
            out.push('"');
            out.push_str(clean);
            out.push('"');
        } else {
            out.push_str(clean);
        }
    }
    out
}

/// Splits a `tag_list` into tags. Whitespace separates tags except inside
/// double quotes; quotes are removed; each tag is trimmed; empty tags are
/// dropped. An unterminated quote runs to the end of the string.
pub fn decode_tag_list(text: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    for c in text.chars() {
        match c {
            '"' => in_quotes = !in_quotes,
            c if c.is_whitespace() && !in_quotes => push_tag(&mut tags, &mut current),
            c => current.push(c),
        }
    }
    push_tag(&mut tags, &mut current);
    tags
}

fn push_tag(tags: &mut Vec<String>, current: &mut String) {
    let tag = current.trim();
    if !tag.is_empty() {
        tags.push(tag.to_owned());
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn multi_word_tags_are_quoted_and_single_words_are_not() {
        let tags = strings(&["synthwave", "late night", "80s"]);
        assert_eq!(encode_tag_list(&tags), r#"synthwave "late night" 80s"#);
    }

    #[test]
    fn encoding_trims_drops_empties_and_strips_quotes() {
        let tags = strings(&["  ambient ", "", "   ", "say \"hi\" now"]);
        assert_eq!(encode_tag_list(&tags), r#"ambient "say hi now""#);
    }

    #[test]
    fn round_trip_keeps_every_tag() {
        let tags = strings(&["Slow Tempo", "ambient", "geo:city=New York", "x"]);
        assert_eq!(decode_tag_list(&encode_tag_list(&tags)), tags);
    }

    #[test]
    fn decoding_tolerates_the_leading_space_the_service_adds() {
        assert_eq!(
            decode_tag_list(r#" Ambient "Slow Tempo"  drone"#),
            strings(&["Ambient", "Slow Tempo", "drone"])
        );
        assert_eq!(decode_tag_list(" Showcase"), strings(&["Showcase"]));
    }

    #[test]
    fn decoding_trims_inside_quotes_and_drops_empty_quotes() {
        assert_eq!(
            decode_tag_list(r#""  late night " "" solo"#),
            strings(&["late night", "solo"])
        );
    }

    #[test]
    fn decoding_an_unterminated_quote_keeps_the_rest_as_one_tag() {
        assert_eq!(decode_tag_list(r#"a "b c"#), strings(&["a", "b c"]));
    }

    #[test]
    fn empty_and_blank_lists_have_no_tags() {
        assert!(decode_tag_list("").is_empty());
        assert!(decode_tag_list("   \t ").is_empty());
        assert_eq!(encode_tag_list(&[]), "");
    }
}
