"""CDK constructs of the promotion product, one per concern, composed by `promotion_stack.PromotionStack`."""
