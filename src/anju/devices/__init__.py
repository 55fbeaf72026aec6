"""Devices (安防设施): gates, barriers, cameras and sensors, as registry records."""
