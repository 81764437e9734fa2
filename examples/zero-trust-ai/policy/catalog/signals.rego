# Tables for the data classes the guards report.
package zt.catalog

# The risk thresholds (0.5: step-up, 0.8: deny) are literals in
# scrutiny.rego, where they are compared on every request.

# deny_classes are data classes (context.data_classes) that never pass.
deny_classes := {"secret"}

# mask_classes and mask_types build the mask obligation:
# {class or finding type: "mask" | "hash" | "block"}.
mask_classes := {"pii": "mask"}

# Finding types handled more strictly than their class: card numbers are
# blocked outright (PCI DSS scope), not masked.
mask_types := {"payment_card": "block"}
