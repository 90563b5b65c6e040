include $(sort $(wildcard $(BR2_EXTERNAL_SBA_PATH)/package/*/*.mk))
