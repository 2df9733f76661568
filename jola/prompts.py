"""What the model reads and what it is trained to write: the prompt template and the target.

Three choices, all recorded in results.json (``config.prompt``):

- ``template``: ``release`` (default) is the JoLA release's Alpaca variant, byte for byte
  (jola/dataset.py: a newline *and a space* before "### Instruction:"); ``alpaca`` is the
  standard Alpaca no-input template (a blank line there), this project's template before the
  release was matched. No chat template in either.
- ``target``: ``label`` (default) trains on the data's ``answer`` field as the release does: the
  bare label (answer1, solution2, true, a letter) or the GEM reference; ``sentence`` trains
  choice tasks on LLM-Adapters' ``output`` sentence "the correct answer is answer1"
  (MMLU-Pro keeps its letter and GEM its reference in both styles).
- ``eos``: append the tokenizer's EOS token to the target (default false: the release's SFT
  text is prompt + answer with no EOS).

Log-likelihood scoring (``eval.mode=loglik``) scores the candidates in the same target style.
"""

from __future__ import annotations

from dataclasses import dataclass

from jola.errors import unknown_choice
from jola.registry import Registry

RELEASE_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n ### Instruction:\n{instruction}\n\n### Response:\n"
)
ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)
RESPONSE_MARKER = "### Response:\n"

TEMPLATES: Registry = Registry("prompt template")
TEMPLATES.add("release", RELEASE_TEMPLATE)
TEMPLATES.add("alpaca", ALPACA_TEMPLATE)
TARGET_STYLES = ("label", "sentence")


@dataclass(frozen=True)
class PromptFormat:
    """A template, a target style and the EOS choice: renders prompts and targets."""

    template: str = "release"
    target: str = "label"
    eos: bool = False

    def __post_init__(self) -> None:
        TEMPLATES.get(self.template)  # an unknown name lists the choices
        if self.target not in TARGET_STYLES:
            raise unknown_choice("prompt.target", self.target, TARGET_STYLES)

    @classmethod
    def from_config(cls, cfg) -> PromptFormat:
        """From a :class:`~jola.config.PromptConfig` (or anything with the three fields)."""
        return cls(template=cfg.template, target=cfg.target, eos=cfg.eos)

    def prompt(self, instruction: str) -> str:
        """The prompt the model sees; generation continues right after the response marker."""
        return TEMPLATES.get(self.template).format(instruction=instruction)

    def target_text(self, task, example) -> str:
        """The text the model is trained on for ``example`` (no EOS; see :attr:`eos`)."""
        return task.render_target(example.target, self.target)

    def candidate_texts(self, task, example) -> dict[str, str] | None:
        """Label -> continuation for log-likelihood scoring, in this target style."""
        return task.candidates(example, self.target)


DEFAULT_FORMAT = PromptFormat()


def build_prompt(instruction: str, template: str = "release") -> str:
    """The prompt for ``instruction`` under a named template (default: the release's)."""
    return TEMPLATES.get(template).format(instruction=instruction)


def first_line(response: str) -> str:
    """The first non-empty line of a generated response, stripped."""
    for line in response.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""
