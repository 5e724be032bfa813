"""hw_models"""
