#!/usr/bin/env python3
"""Resolves the executor's IAM statements of template.yaml for sample
BedrockModelIds and AgentFunctionArns (and for none) and checks the ARNs
they grant: the Join/Split expressions that build them are easy to get
wrong and cfn-lint cannot see what they evaluate to. Also checks the web
console's resources (Console=true): a private bucket only its
distribution reads, and CORS on the HTTP API for that origin only (none
without the console).

Usage: .venv/bin/python infra/template-policy-check.py (infra/test.sh runs it)
"""
import re
import sys

from cfnlint.decode import cfn_yaml

PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1"}
NO_VALUE = object()


def resolve(node, params, conditions):
    if isinstance(node, list):
        out = [resolve(n, params, conditions) for n in node]
        return [n for n in out if n is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (key, arg), = node.items()
        if key == "Ref":
            if arg == "AWS::NoValue":
                return NO_VALUE
            return PSEUDO.get(arg, params.get(arg, f"<{arg}>"))
        if key == "Fn::Join":
            delimiter, parts = arg
            assert isinstance(delimiter, str), f"a Join delimiter must be a literal: {delimiter}"
            return delimiter.join(resolve(parts, params, conditions))
        if key == "Fn::Split":
            delimiter, text = arg
            return resolve(text, params, conditions).split(delimiter)
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO.get(m.group(1), f"<{m.group(1)}>"), text)
        if key == "Fn::If":
            name, yes, no = arg
            return resolve(yes if conditions[name] else no, params, conditions)
        if key == "Fn::GetAtt" or key == "Fn::ImportValue":
            return f"<{arg}>"
    return {k: resolve(v, params, conditions) for k, v in node.items()}


def condition(node, params):
    (key, arg), = node.items()
    if key == "Fn::Not":
        return not condition(arg[0], params)
    if key == "Fn::Equals":
        a, b = (resolve(x, params, {}) for x in arg)
        return a == b
    if key == "Fn::And":
        return all(condition(a, params) for a in arg)
    raise ValueError(key)


def statements(template, params):
    conditions = {name: condition(c, params) for name, c in template["Conditions"].items()}
    policies = template["Resources"]["ExecutorFunction"]["Properties"]["Policies"]
    out = {}
    for policy in policies:
        for st in resolve(policy["Statement"], params, conditions):
            out[st["Sid"]] = st
    return out


def console_failures(template):
    failures = []

    def check(what, got, want):
        if got != want:
            failures.append(f"{what}: {got!r}, want {want!r}")

    for on in (True, False):
        params = {"Console": "true" if on else "false"}
        conditions = {name: condition(c, params) for name, c in template["Conditions"].items()}
        body = resolve(template["Resources"]["HttpApi"]["Properties"]["DefinitionBody"], params, conditions)
        cors = body.get("x-amazon-apigateway-cors", NO_VALUE)
        if not on:
            check("no console: no CORS", cors, NO_VALUE)
            check("no console: no bucket", conditions[template["Resources"]["ConsoleBucket"]["Condition"]], False)
            continue
        check("CORS origins", cors["allowOrigins"], ["https://<ConsoleDistribution.DomainName>"])
        bucket = template["Resources"]["ConsoleBucket"]["Properties"]
        check("bucket public access blocked", sorted(bucket["PublicAccessBlockConfiguration"].values()), [True] * 4)
        policy = resolve(template["Resources"]["ConsoleBucketPolicy"]["Properties"]["PolicyDocument"], params, conditions)
        allows = [st for st in policy["Statement"] if st["Effect"] == "Allow"]
        check("one Allow in the console bucket policy", len(allows), 1)
        allow = allows[0]
        check("reader", allow["Principal"], {"Service": "cloudfront.amazonaws.com"})
        check("action", allow["Action"], "s3:GetObject")
        check(
            "only the console's distribution",
            allow["Condition"]["StringEquals"]["AWS:SourceArn"],
            "arn:aws:cloudfront::123456789012:distribution/<ConsoleDistribution>",
        )
    return failures


def main():
    template = cfn_yaml.load("template.yaml")
    failures = []

    def check(what, got, want):
        if got != want:
            failures.append(f"{what}:\n  got  {got}\n  want {want}")

    none = statements(template, {"BedrockModelIds": [""], "AgentFunctionArns": [""]})
    check("no models: no Bedrock statement", "CallListedBedrockModels" in none, False)
    check("no functions: no Lambda statement", "InvokeListedAgentFunctions" in none, False)

    models = ["anthropic.claude-3-5-haiku-20241022-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0"]
    functions = [
        "arn:aws:lambda:us-east-1:123456789012:function:review",
        "arn:aws:lambda:eu-west-1:123456789012:function:triage",
    ]
    some = statements(template, {"BedrockModelIds": models, "AgentFunctionArns": functions})
    bedrock = some.get("CallListedBedrockModels", {})
    check("Bedrock action", bedrock.get("Action"), ["bedrock:InvokeModelWithResponseStream"])
    check(
        "Bedrock resources",
        sorted(bedrock.get("Resource", [])),
        sorted(
            [f"arn:aws*:bedrock:*::foundation-model/{m}" for m in models]
            + [f"arn:aws*:bedrock:*:*:inference-profile/{m}" for m in models]
        ),
    )
    lam = some.get("InvokeListedAgentFunctions", {})
    check("Lambda action", lam.get("Action"), ["lambda:InvokeFunction"])
    check(
        "Lambda resources",
        sorted(lam.get("Resource", [])),
        sorted(functions + [f + ":*" for f in functions]),
    )
    one = statements(template, {"BedrockModelIds": models[:1], "AgentFunctionArns": functions[:1]})
    check(
        "one function",
        sorted(one["InvokeListedAgentFunctions"]["Resource"]),
        sorted([functions[0], functions[0] + ":*"]),
    )
    failures += console_failures(template)
    if failures:
        print("template policies:\n" + "\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print("executor policy: Bedrock and Lambda statements grant exactly the listed models and functions")
    print("console: a private bucket only its distribution reads; CORS for its origin only, none without it")


if __name__ == "__main__":
    main()
