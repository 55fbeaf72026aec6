"""Alert models (预警模型) and the closed loop from alert to feedback."""
