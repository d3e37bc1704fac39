"""What the instruments read of an article: the leaning classifier's inputs."""

import numpy as np
import pytest

from selfconsuming.scoring import SYNTHETIC_TEXT_RULES, bias_table, leaning_inputs

PIECES = [" of the bill. The mayor spoke. The mayor spoke. The council", " approved it, he said. THE MAYOR SPOKE! Voters were told. And"]
SYNTHETIC = {"id": "s", "title": "A title from the human prompt", "text": "".join(PIECES).strip(), "continuations": PIECES}
HUMAN = {"id": "h", "title": "Budget vote", "text": "The council met. The council met."}


class RecordingClassifier:
    """Remembers what it was given; says left for any text with 'mayor', right otherwise."""

    def predict_proba(self, texts):
        self.texts = list(texts)
        return np.array([[0.8, 0.1, 0.1] if "mayor" in t.lower() else [0.1, 0.1, 0.8] for t in texts])


def test_synthetic_text_is_read_as_the_oracle_reads_it_without_the_prompts_title():
    synthetic, human = leaning_inputs([SYNTHETIC, HUMAN], "distinct_whole")
    # seam halves dropped, each distinct sentence once (case and punctuation blind), no title
    assert synthetic == {"id": "s", "text": "The mayor spoke. Voters were told."}
    assert human is HUMAN  # a human article is read whole, title included
    full, _ = leaning_inputs([SYNTHETIC, HUMAN], "full")
    assert full == {"id": "s", "text": SYNTHETIC["text"]}
    # nothing whole to read: the generated text is all the evidence there is
    halves = [" of the bill. The mayor said that", " it was. And then"]
    cut = {"id": "c", "title": "T", "text": "of the bill. The mayor said that it was. And then", "continuations": halves}
    assert leaning_inputs([cut], "distinct_whole") == [{"id": "c", "text": cut["text"]}]
    with pytest.raises(ValueError, match="synthetic_text"):
        leaning_inputs([SYNTHETIC], "everything")
    assert set(SYNTHETIC_TEXT_RULES) == {"distinct_whole", "full"}


def test_bias_table_scores_the_chosen_reading_per_article():
    classifier = RecordingClassifier()
    table = bias_table([SYNTHETIC, HUMAN], classifier, "distinct_whole")
    assert classifier.texts == ["The mayor spoke. Voters were told.", "Budget vote\n\nThe council met. The council met."]
    assert list(table["id"]) == ["s", "h"] and list(table["label"]) == ["left", "right"]
