"""The Alpaca no-input template used by the JoLA release (no chat template)."""

ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)
RESPONSE_MARKER = "### Response:\n"


def build_prompt(instruction: str) -> str:
    """The prompt the model sees; generation continues right after the response marker."""
    return ALPACA_TEMPLATE.format(instruction=instruction)


def first_line(response: str) -> str:
    """The first non-empty line of a generated response, stripped."""
    for line in response.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""
