"""The mini track's tokenizer: a byte-level BPE trained offline on the synthetic corpus.

Why this shape (../shared/design/mini-track.md): a tiny model trained for minutes cannot learn to
copy numbers spelled one digit per token, but it can when every number it meets is one token. The
BPE is therefore trained on the corpus plus a seed that repeats every number 0..``MAX_SINGLE_TOKEN_NUMBER``
(with and without a leading space) often enough that each becomes one merge. Byte-level means no
unknown tokens: any untrusted text still encodes.

Prompt format: the tokenizer carries a deliberately minimal chat template,
``<|bos|>`` + message contents joined by newlines + ``\\n``. Every caller (SFT, RL rollouts,
evaluation) renders prompts through ``tokenizer.apply_chat_template``, so the same code path also
serves real instruct models whose folders carry their own template.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from clipo.methods import MiniSFT

BOS, EOS, PAD = "<|bos|>", "<|endoftext|>", "<|pad|>"
MAX_SINGLE_TOKEN_NUMBER = 60
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['content'] }}\n{% endfor %}"
)
"""Raw prompt + newline; the generation prompt is empty because the answer simply follows."""


def _seed_texts(copies: int) -> Iterator[str]:
    """Every small number, alone and after a space, ``copies`` times: frequent enough to win merges.

    One text per copy, the numbers on their own lines: the byte-level pre-tokenizer splits it into the
    same number words as separate texts would (plus newline words, single symbols that hold no pair),
    so the merges are the same while the trainer reads ~120× fewer texts (~9 s less per `clipo sft`).
    """
    numbers = [str(n) for n in range(MAX_SINGLE_TOKEN_NUMBER + 1)]
    text = "\n".join(numbers + [" " + n for n in numbers])
    for _ in range(copies):
        yield text


def build_tokenizer(texts: Iterable[str], vocab_size: int = MiniSFT.vocab_size):
    """Train the byte-level BPE on ``texts`` (deterministic for the same texts) and wrap it for transformers.

    Returns a ``PreTrainedTokenizerFast`` with bos/eos/pad set, left padding (generation appends on
    the right) and the minimal chat template described in the module docstring.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(texts)
    if not texts:
        raise ValueError("build_tokenizer: empty corpus")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS, BOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The seed outweighs any pair the corpus can offer, so the number merges come first.
    bpe.train_from_iterator(list(_seed_texts(copies=len(texts) + 1)) + texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD, padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    too_long = [n for n in range(MAX_SINGLE_TOKEN_NUMBER + 1)
                if len(tokenizer.encode(f" {n}", add_special_tokens=False)) != 1]
    if too_long:
        raise ValueError(f"build_tokenizer: vocab_size={vocab_size} too small to hold every number "
                         f"0..{MAX_SINGLE_TOKEN_NUMBER} as one token (split: {too_long[:5]})")
    return tokenizer
