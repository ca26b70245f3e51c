"""Translates infra/template.yaml (AWS SAM) to plain CloudFormation JSON, as `sam deploy` has
CloudFormation do: moto ignores the SAM transform, so the tests deploy this output instead.

Runs in the infra tools' environment (.tools/infra/bin/python), where aws-sam-translator
lives: `python infra/tools/sam_translate.py TEMPLATE --code-uri s3://bucket/key > out.json`.
CodeUri becomes that S3 location, as `sam package` would make it.
"""

import argparse
import json
import sys

import yaml
from samtranslator.translator.transform import transform

# CloudFormation's short intrinsic tags, as their long form.
_TAGS = {
    "!Ref": "Ref",
    "!Condition": "Condition",
    "!GetAtt": "Fn::GetAtt",
    **{
        f"!{name}": f"Fn::{name}"
        for name in (
            "Sub",
            "If",
            "Equals",
            "Not",
            "And",
            "Or",
            "Join",
            "Select",
            "Split",
            "FindInMap",
            "Base64",
            "Cidr",
            "GetAZs",
            "ImportValue",
        )
    },
}


class _Loader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
    name = _TAGS[node.tag]
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


for _tag in _TAGS:
    _Loader.add_constructor(_tag, _intrinsic)


class _NoManagedPolicies:
    """Every role in the template is written out; SAM is never asked to attach one by name."""

    def load(self) -> dict[str, str]:
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template")
    parser.add_argument("--code-uri", required=True, help="s3://bucket/key of the function zip")
    args = parser.parse_args()
    with open(args.template) as source:
        template = yaml.load(source, Loader=_Loader)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = args.code_uri
    translated = transform(template, {}, _NoManagedPolicies(), passthrough_metadata=True)
    json.dump(translated, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
